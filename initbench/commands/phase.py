"""CLI command: phase — the order-to-chaos phase diagram against mean-field theory.

Only typer and JAX-free modules are imported here; JAX starts inside the command.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from initbench.commands import options as o
from initbench.runtime import Runtime

ACTIVATION = o.ACTIVATION.but(default="tanh", help="tanh or relu (the theory's depth scale is "
                                                   "computed for these).")
SIGMA_W2 = o.Opt("sigma_w2", ("--sigma-w2",), str, "0.5:4:15",
                 "Weight variances: LOW:HIGH:COUNT (linear, ends included) or a list; weights "
                 "are N(0, sigma_w2/fan_in).")
SIGMA_B2 = o.Opt("sigma_b2", ("--sigma-b2",), float, 0.05, "Bias variance: biases N(0, sigma_b2).")
DEPTHS = o.Opt("depths", ("--depths",), str, "10:100:10",
               "Depths (hidden layers): LOW:HIGH:STEP (ends included) or a list.")
SEEDS = o.SEEDS.but(default="2", help="Seeds: a count N (0..N-1) or a list.")
WIDTH = o.Opt("width", ("--width",), int, 64, "Width of every hidden layer.")
# One dataset, always named (mnist-5k): not --dataset's optional one with its fallback.
DATASET = o.Opt("dataset", ("--dataset",), str, "mnist-5k",
                "The dataset (see `initbench datasets`).")
EPOCHS = o.EPOCHS.but(default=2, help="Training epochs per net (a short budget).")
# One rate, a number: not --lr's list of rates.
LR = o.Opt("lr", ("--lr",), float, 0.001, "Learning rate.")
OPTIMIZER = o.OPTIMIZER.but(default="adam", help="Optimizer (as for compare).")
THRESHOLD = o.Opt("threshold", ("--threshold",), float, 50.0,
                  "A net is trainable when its final test accuracy is at least this (percent).")
OUT = o.OUT.but(help="Output folder for phase.csv, phase.png and phase.json (default: a new "
                     "folder under results/).")


@dataclass(frozen=True)
class PhaseOptions:
    """What `phase` was given: the validated diagram (`phase.PhaseSpec`), the folder (None:
    a new one under results/) and `--quiet`."""

    spec: Any  # phase.PhaseSpec (its module loads NumPy: not imported for --help)
    out: Path | None
    quiet: bool


def phase_options(values: dict[str, Any]) -> PhaseOptions:
    """The typed options of `phase`: `PhaseSpec` checks the diagram's settings and the
    `Spec` of its first depth those it shares with compare (optimizer, epochs, batch size,
    rate, dataset name), each in its one place."""
    from initbench import phase as phase_lib
    from initbench import spec as spec_lib

    spec = phase_lib.PhaseSpec(
        activation=values["activation"], sigma_w2=phase_lib.parse_sigma_w2(values["sigma_w2"]),
        sigma_b2=values["sigma_b2"], depths=phase_lib.parse_depths(values["depths"]),
        seeds=spec_lib.parse_seeds(values["seeds"]), width=values["width"],
        dataset=values["dataset"], epochs=values["epochs"], lr=values["lr"],
        optimizer=values["optimizer"], batch_size=values["batch_size"],
        threshold=values["threshold"] / 100)
    spec.training_spec(spec.depths[0])
    return PhaseOptions(spec=spec, out=values["out"], quiet=values["quiet"])


@o.command_options(ACTIVATION, SIGMA_W2, SIGMA_B2, DEPTHS, SEEDS, WIDTH, DATASET, EPOCHS, LR,
                   OPTIMIZER, o.BATCH_SIZE, THRESHOLD, OUT, o.QUIET, typed=phase_options)
def phase(options: PhaseOptions, runtime: Runtime) -> None:
    """Train deep nets over (sigma_w^2, depth) and draw trainability against the mean-field
    correlation depth xi_c (Schoenholz et al. 2017): phase.csv, phase.png, phase.json."""
    from rich.text import Text

    from initbench import jax_setup
    from initbench import phase as phase_lib
    from initbench.console import stderr, stdout
    from initbench.progress import RichReporter
    from initbench.runfolder import new_run_folder

    out = Path(options.out) if options.out is not None else new_run_folder("phase")
    reporter = RichReporter(stderr, show=not options.quiet)
    reporter.phase("starting JAX")
    try:
        runtime = jax_setup.start(runtime)
    finally:
        reporter.stop()
    result = phase_lib.run_phase(options.spec, runtime=runtime, reporter=reporter)
    phase_lib.write(out, result)
    stdout.print(Text(phase_lib.agreement_table(result)))
    stdout.print(Text(result.agreement_line()))
    if not options.quiet:
        stderr.print(Text(f"wrote {out}/phase.csv, phase.png, phase.json"))


def register(app: typer.Typer) -> None:
    """Add phase to `app`."""
    app.command("phase")(phase)
