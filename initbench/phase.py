"""The order-to-chaos phase diagram (Schoenholz, Gilmer, Ganguli and Sohl-Dickstein 2017,
"Deep information propagation"): mean-field depth scales, and trainability measured over
a grid of (sigma_w^2, depth) with the runner every comparison uses.

Mean-field theory of a deep fully connected net with weights N(0, sigma_w^2/fan_in) and
biases N(0, sigma_b^2), activation phi, expectations over z ~ N(0, 1) (Gauss-Hermite):

    q*   = sigma_w^2 E[phi(sqrt(q*) z)^2] + sigma_b^2            (the variance fixed point)
    chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2]                        (order: < 1; chaos: > 1)
    c*   : the stable fixed point of c -> (sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2) / q*,
           u1 = sqrt(q*) z1, u2 = sqrt(q*) (c z1 + sqrt(1 - c^2) z2)   (1 in the ordered phase)
    chi_c = sigma_w^2 E[phi'(u1) phi'(u2)] at c*;   xi_c = -1 / ln(chi_c)

(eqs. 3-9 of the paper; chi_c = chi_1 in the ordered phase). The paper finds nets trainable
when depth < 6 xi_c. ReLU has no such line: its correlation map's slope at c = 1 is 1 for
every sigma_w^2, and the signal's variance scales by chi_1 = sigma_w^2 / 2 per layer, so
here its depth scale is xi = 1 / |ln(sigma_w^2 / 2)|, infinite only at the critical point
sigma_w^2 = 2 (the line is a point); an approximation of ours, labelled so.

Training: for every depth one grid, trained by `runner.Runner` (the cell axis, blocks
and compiled programs of every comparison); a cell is (sigma_w^2, seed), its data order the
seed's own (the paired key scheme: shared by every sigma_w^2), its weights drawn from the
key of (sigma_w^2, sigma_b^2, seed) folded with each layer's index. Trainable: final test
accuracy at least `threshold`.
"""

from __future__ import annotations

import itertools
import math
import zlib
from dataclasses import dataclass, field

import numpy as np

from initbench.errors import InitbenchError

PHASE_COLUMNS = ("sigma_w2", "sigma_b2", "depth", "seed", "final_test_accuracy", "trainable",
                 "xi_c", "depth_over_xi_c", "q_star", "chi_1")


# ---------------------------------------------------------------- mean-field theory
# (in `initbench.mean_field`, which the figure reads too)

from initbench.mean_field import THEORY_ACTIVATIONS, chi_1, critical_sigma_w2, q_star, xi_c  # noqa: E402

# ---------------------------------------------------------------- options


def parse_sigma_w2(text: str) -> tuple[float, ...]:
    """'0.5:4:15' -> 15 values from 0.5 to 4 (ends included, linear); '1,1.5,2' -> those."""
    text = str(text).strip()
    try:
        if ":" in text:
            low, high, count = text.split(":")
            low, high, num = float(low), float(high), int(count)
            if not 0 < low < high or not 2 <= num <= 200:
                raise ValueError
            return tuple(float(f"{v:.6g}") for v in np.linspace(low, high, num))
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InitbenchError(f"--sigma-w2: '{text}' is not LOW:HIGH:COUNT (0 < LOW < HIGH, "
                             "2 <= COUNT <= 200, e.g. 0.5:4:15) or a list of positive "
                             "numbers.") from None
    if not values or any(not math.isfinite(v) or v <= 0 for v in values) or len(
            set(values)) != len(values):
        raise InitbenchError(f"--sigma-w2: '{text}' must list distinct positive numbers.")
    return values


def parse_depths(text: str) -> tuple[int, ...]:
    """'10:100:10' -> 10, 20, ..., 100 (LOW:HIGH:STEP, ends included); '5,10' -> those."""
    text = str(text).strip()
    try:
        if ":" in text:
            low, high, step = (int(v) for v in text.split(":"))
            if not 1 <= low <= high or step < 1:
                raise ValueError
            values = tuple(range(low, high + 1, step))
        else:
            values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise InitbenchError(f"--depths: '{text}' is not LOW:HIGH:STEP (1 <= LOW <= HIGH, "
                             "STEP >= 1, e.g. 10:100:10) or a list of positive integers.") from None
    if not values or any(v < 1 or v > 1000 for v in values) or len(set(values)) != len(values):
        raise InitbenchError(f"--depths: '{text}' must list distinct depths from 1 to 1000.")
    return values


@dataclass(frozen=True)
class PhaseSpec:
    """One phase diagram: the grid (sigma_w2 x depths x seeds), the nets and their training."""

    activation: str = "tanh"
    sigma_w2: tuple[float, ...] = tuple(float(f"{v:.6g}") for v in np.linspace(0.5, 4, 15))
    sigma_b2: float = 0.05
    depths: tuple[int, ...] = tuple(range(10, 101, 10))
    seeds: tuple[int, ...] = (0, 1)
    width: int = 64
    dataset: str | None = "mnist-5k"
    epochs: int = 2
    batch_size: int = 100
    lr: float = 0.001
    optimizer: str = "adam"
    threshold: float = 0.5  # trainable: final test accuracy at least this (a fraction)
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        if self.activation not in THEORY_ACTIVATIONS:
            raise InitbenchError(f"--activation {self.activation}: the phase diagram's theory "
                                 f"is computed for {', '.join(THEORY_ACTIVATIONS)}.")
        if not math.isfinite(self.sigma_b2) or self.sigma_b2 < 0:
            raise InitbenchError(f"--sigma-b2 must be a number >= 0, got {self.sigma_b2}.")
        if not 0 < self.threshold < 1:
            raise InitbenchError(f"--threshold must be a test accuracy in percent in (0, 100), "
                                 f"got {100 * self.threshold:g}.")
        if not 1 <= self.width <= 100_000:
            raise InitbenchError(f"--width must be from 1 to 100000, got {self.width}.")

    def training_spec(self, depth: int):
        """The `Spec` of the MLP of `depth` hidden layers every cell of that depth trains."""
        from initbench.spec import Spec

        return Spec(inits=("normal",), seeds=self.seeds, dataset=self.dataset,
                    epochs=self.epochs, batch_size=self.batch_size, lr=(self.lr,),
                    optimizer=self.optimizer, hidden=(self.width,) * depth,
                    activation=self.activation)


# ---------------------------------------------------------------- training


def cell_name(sigma_w2: float) -> str:
    return f"sigma_w2={sigma_w2:g}"


def _weights_key(sigma_w2: float, sigma_b2: float, seed: int):
    """The key of cell (sigma_w2, seed): its own stream, never shared with a comparison's."""
    import jax

    from initbench import model as model_lib

    name_id = zlib.crc32(f"phase {sigma_w2:g} {sigma_b2:g}".encode()) & 0x7FFFFFFF
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), model_lib.INIT_STREAM),
                              name_id)


def draw_mlp(key, sigma_w2: float, sigma_b2: float, sizes: list[int]) -> dict:
    """The MLP's params (`model.MLP`'s tree) with W ~ N(0, sigma_w2/fan_in), b ~ N(0, sigma_b2)."""
    import jax
    import jax.numpy as jnp

    params = {}
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        k_w, k_b = jax.random.split(jax.random.fold_in(key, i))
        params[f"dense_{i}"] = {
            "kernel": jax.random.normal(k_w, (fan_in, fan_out), jnp.float32)
            * jnp.sqrt(jnp.float32(sigma_w2) / fan_in),
            "bias": jax.random.normal(k_b, (fan_out,), jnp.float32)
            * jnp.sqrt(jnp.float32(sigma_b2))}
    return params


def _phase_runner(spec, dataset, runtime, sigma_b2: float):
    """A `Runner` whose starting parameters are the phase cells' draws."""
    import jax

    from initbench import runner, sharding, train

    class PhaseRunner(runner.Runner):
        def init_state(self, cells):
            sizes = [dataset.x_train.shape[1], *spec.hidden, dataset.num_classes]
            # sigma_w2 traced: one compiled draw per depth, whatever the number of variances
            draw_fn = jax.jit(lambda key, sw2: draw_mlp(key, sw2, sigma_b2, sizes))
            cell_params = [jax.device_get(draw_fn(_weights_key(float(name.split("=")[1]),
                                                                sigma_b2, seed),
                                                  float(name.split("=")[1])))
                           for name, seed, *_ in cells]
            params = jax.tree.map(lambda *leaves: np.stack(leaves), *cell_params)
            host = (params, np.asarray(jax.random.key_data(train.data_keys(cells))),
                    train.cell_lrs(spec, cells))
            return self.init_fn(sharding.to_blocks(host, runtime.mesh)), [None] * len(cells)

    return PhaseRunner(spec, dataset, runtime)


@dataclass
class PhaseResult:
    """accuracy [sigma_w2, depth, seed] (final test accuracy, NaN where training diverged),
    xi [sigma_w2] (the theory's depth scale), and the settings."""

    spec: PhaseSpec
    accuracy: np.ndarray
    xi: np.ndarray
    q: np.ndarray
    chi: np.ndarray
    dataset: str = ""

    @property
    def trainable(self) -> np.ndarray:
        return np.nan_to_num(self.accuracy, nan=0.0) >= self.spec.threshold

    def ratio(self) -> np.ndarray:
        """depth / xi_c per cell [sigma_w2, depth, seed]."""
        depths = np.asarray(self.spec.depths, float)[None, :, None]
        return np.broadcast_to(depths / self.xi[:, None, None], self.accuracy.shape)

    def agreement(self) -> dict:
        """Cells below 3 xi_c and beyond 12 xi_c: how many, and the share that trained."""
        ratio, ok = self.ratio(), self.trainable
        below, beyond = ratio < 3, ratio > 12
        return {"below_3xi": int(below.sum()), "below_3xi_trained": int(ok[below].sum()),
                "beyond_12xi": int(beyond.sum()), "beyond_12xi_trained": int(ok[beyond].sum())}

    def agreement_line(self) -> str:
        """One line: the shares, against the theory's all and none."""
        a = self.agreement()

        def share(trained, total):
            return "no cells" if total == 0 else f"{trained}/{total} ({100 * trained / total:.0f}%)"

        return (f"agreement with theory: {share(a['below_3xi_trained'], a['below_3xi'])} of "
                f"the cells with depth < 3 xi_c train (theory: all; wanted >= 80%), "
                f"{share(a['beyond_12xi_trained'], a['beyond_12xi'])} of those with depth > "
                f"12 xi_c train (theory: none; wanted <= 20%); trainable: final test accuracy "
                f">= {100 * self.spec.threshold:g}%")

    def rows(self) -> list[dict]:
        """phase.csv: one row per cell."""
        out = []
        for i, sw2 in enumerate(self.spec.sigma_w2):
            for j, depth in enumerate(self.spec.depths):
                for s, seed in enumerate(self.spec.seeds):
                    acc = self.accuracy[i, j, s]
                    out.append({"sigma_w2": sw2, "sigma_b2": self.spec.sigma_b2,
                                "depth": depth, "seed": seed,
                                "final_test_accuracy": None if np.isnan(acc) else float(acc),
                                "trainable": bool(self.trainable[i, j, s]),
                                "xi_c": float(self.xi[i]),
                                "depth_over_xi_c": float(depth / self.xi[i]),
                                "q_star": float(self.q[i]), "chi_1": float(self.chi[i])})
        return out


def theory(spec: PhaseSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(xi_c, q*, chi_1), each [sigma_w2]."""
    a, b2 = spec.activation, spec.sigma_b2
    return (np.array([xi_c(a, v, b2) for v in spec.sigma_w2]),
            np.array([q_star(a, v, b2) for v in spec.sigma_w2]),
            np.array([chi_1(a, v, b2) for v in spec.sigma_w2]))


def run_phase(spec: PhaseSpec, *, runtime, reporter=None, dataset=None) -> PhaseResult:
    """Train every (sigma_w2, depth, seed) cell of `spec`; one runner per depth. `runtime`
    is the caller's (`jax_setup.start`'s); its cell cache is never used."""
    from initbench import data, progress

    runtime = runtime.replace(use_cache=False)  # phase cells are not comparison cells
    reporter = reporter or progress.SilentReporter()
    if dataset is None:
        dataset, _ = data.load_data(spec.training_spec(spec.depths[0]))
    accuracy = np.full((len(spec.sigma_w2), len(spec.depths), len(spec.seeds)), np.nan)
    cells = [(cell_name(v), seed) for v in spec.sigma_w2 for seed in spec.seeds]
    reporter.start(len(spec.depths) * len(cells) * spec.epochs,
                   f"training {len(spec.depths) * len(cells)} nets")
    try:
        for j, depth in enumerate(spec.depths):
            training = spec.training_spec(depth).replace(dataset=dataset.name)
            runner = _phase_runner(training, dataset, runtime, spec.sigma_b2)
            out = runner.train(cells, reporter)
            for c, ((_, seed), arrays) in enumerate(zip(cells, out)):
                final = float(arrays["test_accuracy"][-1])
                finite = all(np.all(np.isfinite(arrays[k])) for k in ("train_loss", "test_loss"))
                accuracy[c // len(spec.seeds), j, spec.seeds.index(seed)] = (
                    final if finite and np.isfinite(final) else np.nan)
    finally:
        reporter.stop()
    xi, q, chi = theory(spec)
    return PhaseResult(spec, accuracy, xi, q, chi, dataset.name)


def agreement_table(result: PhaseResult) -> str:
    """A text table: per sigma_w^2, xi_c and the depths whose nets trained (seeds that did)."""
    spec = result.spec
    lines = [f"{'sigma_w2':>8} {'chi_1':>6} {'xi_c':>8}  trained seeds per depth "
             f"({' '.join(str(d) for d in spec.depths)})"]
    for i, sw2 in enumerate(spec.sigma_w2):
        counts = " ".join(f"{int(result.trainable[i, j].sum())}/{len(spec.seeds)}"
                          for j in range(len(spec.depths)))
        xi = "inf" if not np.isfinite(result.xi[i]) else f"{result.xi[i]:.2f}"
        lines.append(f"{sw2:>8g} {result.chi[i]:>6.3f} {xi:>8}  {counts}")
    return "\n".join(lines)


def write(folder, result: PhaseResult) -> None:
    """Write phase.csv (one row per cell), phase.png and phase.json (settings, theory,
    agreement, environment) into `folder`, all at once."""
    import json
    from pathlib import Path

    from initbench import phase_plot, provenance, runfolder, safeio

    folder = safeio.resolve_out(Path(folder))
    spec = result.spec
    document = {
        "settings": {k: (list(v) if isinstance(v, tuple) else v)
                     for k, v in spec.__dict__.items() if k != "extra"},
        "dataset": result.dataset,
        "critical_sigma_w2": critical_sigma_w2(spec.activation, spec.sigma_b2),
        "agreement": result.agreement(), "agreement_line": result.agreement_line(),
        **provenance.environment()}
    files = {"phase.csv": runfolder.csv_text(result.rows(), PHASE_COLUMNS).encode(),
             "phase.png": phase_plot.render(result),
             "phase.json": (json.dumps(document, indent=2, default=str) + "\n").encode()}
    try:
        safeio.write_folder(folder, files, replaceable=tuple(files))
    except OSError as err:
        raise InitbenchError(safeio.describe_os_error(err)) from None
