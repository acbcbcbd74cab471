"""Parameterizations (sp, ntk, mup), the transfer verdict and the coordinate check.

The muP scalings are checked against Tensor Programs V (Yang et al. 2022): Table 8 (the
form microsoft/mup implements) literally, and Table 3 (Adam column) through the effective
kernel the forward pass uses. `--param sp` is checked to leave keys, spec.json and numbers
as they were before the parameterizations existed.
"""

import csv
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from typer.testing import CliRunner

from initbench import coord, networks, parameterize, starts, train, transfer
from initbench.cli import app
from initbench.data import load
from initbench.spec import Spec

ROOT = Path(__file__).resolve().parents[1]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# ---------------------------------------------------------------- the paper's table

# Table 8 of Tensor Programs V (muP for Adam, as microsoft/mup implements it: MuReadout,
# set_base_shapes, MuAdam), with fan_in measured relative to the base (m = width / base):
# (stored init variance factor, multiplier, Adam rate factor) per layer kind.
def table_8(kind, m):
    return {"input": (1.0, 1.0, 1.0),       # input weights & all biases: 1/fan_in, 1, 1
            "hidden": (1.0, 1.0, 1.0 / m),  # hidden: 1/fan_in, 1, 1/fan_in
            "output": (m, 1.0 / m, 1.0)}[kind]  # output: 1 (= m x SP's 1/fan_in), 1/fan_in, 1


@pytest.mark.parametrize("width", [32, 128])
def test_mup_scalings_match_table_8_for_a_3_layer_mlp(width):
    base = 32
    spec = Spec(hidden=(width, width), param="mup", base_width=base)
    m = width / base
    network = networks.resolve(spec, 10, (64,))
    scalings = parameterize.scalings(spec, network)
    for name, kind in zip(("dense_0", "dense_1", "dense_2"), ("input", "hidden", "output")):
        var, multiplier, rate = table_8(kind, m)
        got = scalings[(name, "kernel")]
        assert got.init ** 2 == pytest.approx(var) and got.multiplier == pytest.approx(multiplier)
        assert got.rate == pytest.approx(rate), (name, width)


def test_mup_card_matches_table_3_adam_at_two_widths():
    """Table 3 (Adam): effective init variance 1/fan_in for input and hidden kernels,
    1/fan_in^2 for the output kernel; Adam rate 1 for input kernels and biases, 1/fan_in for
    hidden and output kernels. For Adam a multiplier c on a stored kernel scales its
    effective update by c (Adam's step is invariant to the gradient's scale), so the
    effective rate is rate x multiplier. Checked as ratios between widths 16 and 64 (base
    16), on the card `inspect --param mup` prints (expected stds, the drawn ones close)."""
    data = load("digits")
    cards = {}
    for width in (16, 64):
        spec = Spec(inits=("he_normal",), hidden=(width, width), param="mup", base_width=16,
                    lr=(0.01,), dataset="digits")
        rows = starts.init_card(spec, "he_normal", 0, data)
        cards[width] = {row["path"]: row for row in rows}
    ratio = 64 / 16  # fan_in ratio of hidden and output kernels

    def effective_var(width, path):
        row = cards[width][path]
        return (row["expected_std"] * row["multiplier"]) ** 2

    def effective_rate(width, path):
        row = cards[width][path]
        return row["rate"] * row["multiplier"]

    # Table 3, Adam column: (kernel, init variance ~ fan_in^-a, Adam rate ~ fan_in^-b)
    for path, a, b in (("dense_0/kernel", 0, 0), ("dense_1/kernel", 1, 1),
                       ("dense_2/kernel", 2, 1)):
        assert effective_var(64, path) == pytest.approx(effective_var(16, path) / ratio**a)
        assert effective_rate(64, path) == pytest.approx(effective_rate(16, path) / ratio**b)
    for path in ("dense_0/bias", "dense_1/bias", "dense_2/bias"):
        assert cards[64][path]["rate"] == cards[16][path]["rate"] == 0.01
    # at the base width muP is SP: every factor 1
    assert all(row["multiplier"] == 1 and row["rate"] == 0.01 for row in cards[16].values())
    # what was drawn is what the card expects (the stored output kernel is x sqrt(m) = x 2)
    out = cards[64]["dense_2/kernel"]
    assert out["drawn_std"] == pytest.approx(out["expected_std"], rel=0.15)
    assert out["expected_std"] == pytest.approx(2 * math.sqrt(2 / 64) * 1.0, rel=1e-6)


def test_one_adam_step_moves_each_kernel_at_its_own_rate():
    """Adam's first step moves every entry with a nonzero gradient by ~lr: under mup at
    m = 4 the hidden kernel moves by lr/4, the input and (stored) output kernels by lr."""
    spec = Spec(inits=("he_normal",), hidden=(32, 32), param="mup", base_width=8, lr=(0.01,))
    data = load("digits")
    params = jax.tree.map(lambda a: a[0], starts.cell_starts(spec, [("he_normal", 0)],
                                                             data).params)
    network = networks.resolve(spec, 10, data.image_shape)
    tx = train.make_optimizer(spec, network=network)
    apply_fn = parameterize.wrap_apply(spec, networks.make_apply(spec, 10, data.image_shape),
                                       network)

    def loss_fn(p):
        logits = apply_fn({"params": p}, jnp.asarray(data.x_train[:100]))
        return optax.softmax_cross_entropy_with_integer_labels(
            logits, jnp.asarray(data.y_train[:100])).mean()

    grads = jax.jit(jax.grad(loss_fn))(params)
    updates, _ = tx.update(grads, tx.init(params), params)
    moved = {k: float(jnp.max(jnp.abs(updates[k]["kernel"]))) for k in updates}
    assert moved["dense_0"] == pytest.approx(0.01, rel=1e-3)
    assert moved["dense_1"] == pytest.approx(0.01 / 4, rel=1e-3)
    assert moved["dense_2"] == pytest.approx(0.01, rel=1e-3)


def test_ntk_keeps_the_forward_at_init_and_scales_the_kernels():
    spec = Spec(hidden=(16, 16), param="ntk")
    sp = Spec(hidden=(16, 16))
    data = load("digits")
    stored = jax.tree.map(lambda a: a[0], starts.cell_starts(spec, [("xavier", 0)], data).params)
    drawn = jax.tree.map(lambda a: a[0], starts.cell_starts(sp, [("xavier", 0)], data).params)
    np.testing.assert_allclose(stored["dense_1"]["kernel"], drawn["dense_1"]["kernel"] * 4,
                               rtol=1e-6)
    effective = parameterize.effective(spec, stored, networks.resolve(spec, 10, data.image_shape))
    np.testing.assert_allclose(effective["dense_0"]["kernel"], drawn["dense_0"]["kernel"],
                               rtol=1e-6)


# ---------------------------------------------------------------- sp changes nothing

# Keys computed on main before parameterizations existed (commit d75fedd).
KEYS_BEFORE = {"default": "d614a923579012c2", "tiny multi-rate": "e3c50e8aeb4ae721",
               "results/reference": "ecf3698bc7ea1ca4"}


def test_sp_leaves_cache_keys_and_committed_runs_unchanged():
    assert Spec().training_key() == KEYS_BEFORE["default"]
    assert Spec(param="sp").training_key() == KEYS_BEFORE["default"]
    tiny = Spec(hidden=(8, 8), lr=(0.001, 0.01, 0.1), dataset="digits", epochs=2)
    assert tiny.training_key() == KEYS_BEFORE["tiny multi-rate"]
    assert "param" not in Spec().to_dict() and "base_width" not in Spec().to_dict()
    for folder in ("reference", "cnn-reference", "lr-mnist-5k"):
        stored = json.loads((ROOT / "results" / folder / "spec.json").read_text())["spec"]
        spec = Spec.from_dict(stored)
        assert spec.param == "sp" and spec.to_dict() == stored, folder
    reference = json.loads((ROOT / "results/reference/spec.json").read_text())["spec"]
    assert Spec.from_dict(reference).training_key() == KEYS_BEFORE["results/reference"]
    mup = Spec(param="mup", base_width=64)
    assert mup.training_key() != Spec().training_key()
    assert mup.training_key() != mup.replace(base_width=128).training_key()
    assert Spec.from_dict(json.loads(json.dumps(mup.to_dict()))) == mup


def test_sp_is_the_plain_optimizer():
    """sp builds exactly the optax optimizer it built before (no chain, no scaling): same
    state structure, bitwise the same update. (That muP at its base width trains bitwise
    sp's numbers is checked through `transfer` below.)"""
    params = {"dense_0": {"kernel": jnp.ones((3, 2)), "bias": jnp.zeros(2)}}
    grads = jax.tree.map(lambda a: a * 0.3 + 0.1, params)
    plain = optax.adam(0.01)
    ours = train.make_optimizer(Spec(lr=(0.01,)))
    assert jax.tree.structure(ours.init(params)) == jax.tree.structure(plain.init(params))
    np.testing.assert_array_equal(ours.update(grads, ours.init(params))[0]["dense_0"]["kernel"],
                                  plain.update(grads, plain.init(params))[0]["dense_0"]["kernel"])
    mup_spec = Spec(lr=(0.01,), param="mup", base_width=64)
    mup = train.make_optimizer(mup_spec, network=networks.resolve(mup_spec, 10, (784,)))
    assert jax.tree.structure(mup.init(params)) != jax.tree.structure(plain.init(params))


# ---------------------------------------------------------------- statistics


def test_best_rate_is_the_vertex_of_a_parabola_in_log_rate():
    log_lrs = np.log([1e-3, 1e-2, 1e-1, 1.0])
    centre = np.log(3e-2)
    losses = (log_lrs - centre) ** 2 + 1.0
    best, edge = transfer.best_log_rates(log_lrs, losses)
    assert best == pytest.approx(centre) and not edge
    best, edge = transfer.best_log_rates(log_lrs, np.array([1.0, 2.0, 3.0, np.nan]))
    assert best == pytest.approx(log_lrs[0]) and edge
    best, edge = transfer.best_log_rates(log_lrs, np.array([3.0, 2.0, 1.5, np.nan]))
    assert best == pytest.approx(log_lrs[2]) and not edge  # a diverged neighbour: the grid point


def _bowls(widths, lrs, best_of_width, num_seeds=4, noise=0.0):
    """values [width, lr, seed]: a parabola in log-rate around each width's best rate."""
    rng = np.random.default_rng(1)
    log_lrs = np.log(lrs)
    out = np.empty((len(widths), len(lrs), num_seeds))
    for i, w in enumerate(widths):
        out[i] = ((log_lrs - np.log(best_of_width(w))) ** 2)[:, None] + 1.0
    return out + noise * rng.standard_normal(out.shape)


def test_transfer_verdicts_on_exact_bowls():
    widths, lrs = (64, 128, 256, 512), np.logspace(-5, 0, 11)
    shifting = transfer.transfer(widths, lrs, _bowls(widths, lrs, lambda w: 0.3 / w))
    assert shifting.slope == pytest.approx(-1.0) and shifting.verdict == "shifts"
    assert shifting.best_lr == pytest.approx([0.3 / w for w in widths])
    steady = transfer.transfer(widths, lrs, _bowls(widths, lrs, lambda w: 3e-3))
    assert steady.slope == pytest.approx(0.0, abs=1e-9) and steady.verdict == "transfers"
    assert (steady.slope_low, steady.slope_high) == pytest.approx((0.0, 0.0), abs=1e-9)


def test_decide_and_the_seeds_that_would_decide():
    assert transfer.decide(0.0, -0.1, 0.1, 0.25, 5) == ("transfers", None)
    assert transfer.decide(-0.5, -0.7, -0.3, 0.25, 5) == ("shifts", None)
    assert transfer.decide(0.0, -0.1, 0.1, 0.25, 5, at_edge=True) == ("undecided", None)
    verdict, seeds = transfer.decide(0.05, -0.35, 0.45, 0.25, 5)
    # half-width 0.4; the nearer decision: transfers needs 0.25 - 0.05 = 0.2 -> 5 x 4 = 20
    assert verdict == "undecided" and seeds == 20


def test_coord_verdicts_on_exact_sizes():
    widths = (8, 32, 128)
    w = np.asarray(widths, float)[:, None]
    sizes = np.ones((3, 4, 3, 4))  # [width, seed, step (0..2), layer]
    sizes[:, :, 2, 1] = w                   # grows like width at the last step
    sizes[:, :, 2, 2] = 1 / np.sqrt(w)      # shrinks like 1/sqrt(width) at the last step
    sizes[:, :, 1, 3] = w ** 2              # blows up at step 1, flat again at step 2
    sizes[:, :, 0, :] = 1 / np.sqrt(w)[:, :, None]  # step 0 (init) is not judged
    got = coord.verdicts(widths, sizes)
    assert [(v[3], v[4]) for v in got] == [("stable", 1), ("grows", 2), ("shrinks", 2),
                                            ("grows", 1)]
    assert got[1][0] == pytest.approx(1.0) and got[2][0] == pytest.approx(-0.5)
    assert got[3][0] == pytest.approx(2.0)
    assert coord.classify(-0.5, 0.5, 0.25) == "undecided"


# ---------------------------------------------------------------- the commands


def test_transfer_and_coord_commands_write_their_files(tmp_path):
    result = invoke("transfer", "--dataset", "digits", "--param", "sp,mup", "--widths", "4,8",
                    "--lr", "1e-3:1e-1:3", "--seeds", "2", "--epochs", "1", "--quiet",
                    "--out", tmp_path / "t")
    assert result.exit_code == 0, result.output
    rows = read_csv(tmp_path / "t/transfer.csv")
    assert [(r["param"], r["width"]) for r in rows] == [("sp", "4"), ("sp", "8"),
                                                        ("mup", "4"), ("mup", "8")]
    assert {r["verdict"] for r in rows} <= {"transfers", "shifts", "undecided"}
    cells = read_csv(tmp_path / "t/transfer_cells.csv")
    assert len(cells) == 2 * 2 * 3 * 2
    # muP at its base width (4) is SP: the same cells, the same numbers; wider, not
    values = {(c["param"], c["width"], c["lr"], c["seed"]): c["value"] for c in cells}
    for (param, width, lr, seed), value in values.items():
        if param == "mup":
            assert (values[("sp", width, lr, seed)] == value) == (width == "4")
    assert (tmp_path / "t/transfer.png").read_bytes()[:4] == b"\x89PNG"
    document = json.loads((tmp_path / "t/spec.json").read_text())
    assert document["base_width"] == 4 and document["verdicts"]["mup"]["tolerance"] == 0.25
    assert "sp" in result.stdout and "mup" in result.stdout

    result = invoke("coord", "--dataset", "digits", "--param", "mup", "--widths", "4,16",
                    "--steps", "1", "--seeds", "2", "--quiet", "--out", tmp_path / "c")
    assert result.exit_code == 0, result.output
    rows = read_csv(tmp_path / "c/coord.csv")
    assert len(rows) == 3 * 2 * 2  # layers (2 hidden + logits) x widths x steps (0, 1)
    assert {r["layer"] for r in rows} == {"dense_0", "dense_1", "logits"}
    assert {r["verdict"] for r in rows} <= {"stable", "grows", "shrinks", "undecided"}
    assert (tmp_path / "c/coord.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, message", [
    (["transfer", "--widths", "8"], "--widths needs at least 2"),
    (["transfer", "--widths", "8,8,16"], "--widths needs at least 2 different widths"),
    (["coord", "--widths", "16,8,16"], "--widths needs at least 2 different widths"),
    (["transfer", "--param", "mop"], "unknown parameterization 'mop'"),
    (["transfer", "--lr", "0.01,0.1"], "--lr needs at least 3 rates"),
    (["transfer", "--metric", "accuracy"], "unknown metric"),
    (["coord", "--steps", "0"], "--steps must be"),
    (["transfer", "--seeds", "1"], "at least 2 seeds"),
    (["compare", "--param", "mup", "--base-width", "16", "--model",
      "examples/my_nets.py:make_net"], "--base-width needs the width"),
    (["transfer", "--model", "cnn", "--widths", "16,20"], "multiple of 8"),
    (["transfer", "--model", "cnn", "--depth", "3"], "--depth has no effect"),
    (["transfer", "--depth", "0"], "--depth must be an integer in [1, 100]"),
    (["coord", "--model", "resmlp", "--depth", "101"], "--depth must be an integer in [1, 100]"),
    (["run", "--base-width", "16"], "--base-width has no effect with --param sp"),
    (["inspect", "--param", "ntkk"], "unknown parameterization"),
])
def test_bad_width_study_input_is_one_error_line(args, message):
    result = invoke(*args, "--dataset", "digits")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines


def test_inspect_card_shows_each_layers_multiplier_and_rate():
    result = invoke("inspect", "--param", "mup", "--base-width", "8", "--hidden", "32,32",
                    "--dataset", "digits", "--init", "he_normal", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["param"] == "mup" and document["base_width"] == 8
    rows = {row["path"]: row for row in document["parameters"]}
    assert rows["dense_1/kernel"]["rate"] == pytest.approx(0.01 / 4)
    assert rows["dense_2/kernel"]["multiplier"] == pytest.approx(1 / 4)
    assert rows["dense_2/kernel"]["effective_std"] == pytest.approx(
        rows["dense_2/kernel"]["drawn_std"] / 4)
    table = invoke("inspect", "--param", "mup", "--base-width", "8", "--hidden", "32,32",
                   "--dataset", "digits", "--init", "he_normal")
    assert table.exit_code == 0 and "multiplier" in table.stdout and "0.0025" in table.stdout


def test_the_coordinate_check_measures_ntk_through_its_multipliers():
    """ntk stores each kernel at sqrt(fan_in) x its draw and multiplies it by 1/sqrt(fan_in)
    in the forward pass, so at step 0 the coordinate check sees SP's network: the same
    sizes (measured on the stored kernels alone they would grow like sqrt(fan_in))."""
    data = load("digits")
    sp = Spec(inits=("xavier",), seeds=(0, 1), hidden=(32, 32), dataset="digits")
    ntk = sp.replace(param="ntk")
    at_init = {s.param: coord.coordinate_sizes(s, data, 1)[:, 0] for s in (sp, ntk)}
    np.testing.assert_allclose(at_init["ntk"], at_init["sp"], rtol=1e-5)


def test_readme_transfer_table_is_the_committed_run():
    """The README's numbers are the committed run's, and `make transfer` runs the commands
    the committed spec.json files record."""
    rows = read_csv(ROOT / "results/transfer-mnist-5k/transfer.csv")
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Does the learning rate transfer across width?"):]
    section = section[:section.index("\n## ", 5)]
    for param in ("sp", "mup"):
        line = next(line for line in section.splitlines() if line.startswith(f"| {param} |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        mine = [r for r in rows if r["param"] == param]
        assert [float(c) for c in cells[1:6]] == [round(float(r["best_lr"]), 4) for r in mine]
        r = mine[0]
        assert cells[6] == (f"{float(r['slope']):+.2f} [{float(r['slope_low']):+.2f}, "
                            f"{float(r['slope_high']):+.2f}]")
        assert cells[7] == r["verdict"]
    makefile = (ROOT / "Makefile").read_text()
    for folder in ("transfer-mnist-5k", "coord-mnist-5k"):
        command = json.loads((ROOT / "results" / folder / "spec.json").read_text())["command"]
        line = next(line for line in makefile.splitlines() if f"--out results/{folder}" in line)
        assert line.split()[1:] == command[1:], folder


def test_transfer_bootstrap_resamples_the_same_seeds_at_every_width():
    """Paired over widths: each seed's optimum is offset the same way at every width, so
    every resample moves all widths' best rates together and the slope never moves. A
    bootstrap that drew seeds independently per width would spread the slope."""
    widths, lrs = (64, 128, 256, 512), np.logspace(-5, 0, 21)
    offsets = np.array([-0.8, -0.3, 0.0, 0.4, 0.9])  # a seed's own shift, in log-rate
    log_lrs = np.log(lrs)
    values = np.empty((len(widths), len(lrs), len(offsets)))
    for s, offset in enumerate(offsets):
        values[:, :, s] = (log_lrs - np.log(3e-3) - offset) ** 2 + 1.0
    got = transfer.transfer(widths, lrs, values)
    assert got.slope == pytest.approx(0.0, abs=1e-9)
    assert (got.slope_low, got.slope_high) == pytest.approx((0.0, 0.0), abs=1e-9)
    assert got.verdict == "transfers"


def test_coord_csv_rows_carry_each_steps_slope_and_its_interval():
    """coord.csv: slope, slope_low and slope_high of a row are those of its step
    (`step_slopes`), the interval around the slope; the layer's verdict on every row."""
    from initbench.spec import Spec

    widths = (8, 32, 128)
    rng = np.random.default_rng(0)
    w = np.asarray(widths, float)[:, None, None, None]
    sizes = w ** np.array([0.0, 0.5])[None, None, None, :] * rng.uniform(
        0.5, 1.5, (3, 4, 3, 2))  # [width, seed, step, layer]: noisy, so intervals are wide
    run = coord.CoordRun(spec=Spec(inits=("he_normal",)), params=("sp",), widths=widths,
                         depth=2, base_width=8, steps=2, layers=("dense_0", "logits"),
                         sizes={"sp": sizes}, verdicts={"sp": coord.verdicts(widths, sizes)},
                         tolerance=0.25, meta={})
    slopes = coord.step_slopes(widths, sizes)
    rows = coord.rows(run)
    assert len(rows) == 2 * 3 * 3
    for row in rows:
        j = run.layers.index(row["layer"])
        point, low, high = slopes[row["step"], j]
        assert (row["slope"], row["slope_low"], row["slope_high"]) == (point, low, high)
        assert row["slope_low"] < row["slope"] < row["slope_high"]
        assert row["verdict"] == run.verdicts["sp"][j][3]
