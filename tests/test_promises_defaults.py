"""README promises about defaults and bounds: the classic net and recipe, which seeds and
initializers a bare command uses, and the largest numbers accepted."""

import pytest
from typer.testing import CliRunner

from initbench import experiment
from initbench import spec as spec_lib
from initbench.cli import app
from initbench.errors import InitbenchError
from initbench.spec import Spec


class _Stop(Exception):
    pass


def _spec_of(monkeypatch, *args):
    """The Spec a command line builds (training stopped before it starts)."""
    seen = []

    def capture(spec, *rest, **kwargs):
        seen.append(spec)
        raise _Stop

    monkeypatch.setattr(experiment, "run_experiment", capture)
    CliRunner().invoke(app, [str(a) for a in args])
    assert seen, "the command never reached training"
    return seen[0]


def test_defaults_are_the_classic_net_and_recipe():
    spec = Spec()
    assert (spec.hidden, spec.activation, spec.optimizer, spec.lr, spec.batch_size,
            spec.epochs, spec.bias_init, spec.model) == (
        (256, 256), "relu", "adam", (0.01,), 100, 30, "zeros", "mlp")


def test_bare_run_and_compare_use_the_documented_seeds_and_initializers(monkeypatch, tmp_path):
    run = _spec_of(monkeypatch, "run", "--init", "xavier", "--dataset", "digits",
                   "--out", tmp_path / "r")
    assert run.seeds == (0, 1, 2) and run.inits == ("xavier",)
    compare = _spec_of(monkeypatch, "compare", "--dataset", "digits", "--out", tmp_path / "c")
    assert compare.seeds == (0, 1, 2, 3, 4)
    assert compare.inits == ("xavier", "he_normal", "lecun_normal", "orthogonal", "normal")
    auto = _spec_of(monkeypatch, "compare", "--dataset", "digits", "--seeds", "auto",
                    "--precision", "0.5", "--out", tmp_path / "a")
    assert auto.precision == 0.5 and auto.seed_limit == 30


@pytest.mark.parametrize("changes, ok", [
    ({"seeds": tuple(range(100_000))}, True), ({"seeds": tuple(range(100_001))}, False),
    ({"seeds": (2**32 - 1,)}, True), ({"seeds": (2**32,)}, False),
    ({"epochs": 1_000_000}, True), ({"epochs": 1_000_001}, False),
])
def test_numbers_are_bounded_as_documented(changes, ok):
    def build():
        spec_lib.validate(Spec(dataset="digits", hidden=(4,)).replace(**changes))

    if ok:
        build()
    else:
        with pytest.raises(InitbenchError):
            build()
