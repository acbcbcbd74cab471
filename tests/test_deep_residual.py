"""resmlp and its branch record, the initializers of the last decade (each with its
defining property), the phase diagram's theory and run, and bfloat16 draws. Tiny nets on
digits; hand-computed expectations where there are any."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from initbench import (
    data,
    experiment,
    initializers,
    mean_field,
    metainit,
    model,
    modern_inits,
    networks,
    phase,
    precision,
    starts,
)
from initbench.cli import app
from initbench.errors import InitbenchError
from initbench.runtime import Runtime
from initbench.spec import Spec


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


def flat(params, seed=0):
    return {"/".join(p): np.asarray(v[seed], np.float64)
            for p, v in networks._flatten(params)}


# ---------------------------------------------------------------- resmlp and its record


def test_resmlp_structure_names_branches_gates_stem_and_head(digits):
    spec = Spec(model="resmlp", hidden=(16,) * 3, dataset="digits")
    network = networks.resolve(spec, digits.num_classes, digits.image_shape)
    record = network.structure
    assert record.num_branches == 3 and record.branch_layers == 2
    assert record.role(("block_1", "dense_1")) == "branch_last"
    assert record.role(("block_1", "dense_0")) == "branch_inner"
    assert record.role(("stem",)) == "stem" and record.role(("head",)) == "head"
    paths = {r.name: r for r in network.rules}
    assert paths["block_2/gate"].shape == () and paths["block_2/gate"].kind == "own"
    assert all((*layer, "kernel") in {r.path for r in network.rules}
               for branch in record.branches for layer in branch)


def test_resmlp_refuses_mixed_widths_norm_elsewhere_and_branch_inits_without_branches():
    with pytest.raises(InitbenchError, match="one width"):
        Spec(model="resmlp", hidden=(32, 16))
    with pytest.raises(InitbenchError, match="--norm layer has no effect"):
        Spec(norm="layer")
    with pytest.raises(InitbenchError, match="residual branches"):
        Spec(inits=("fixup", "xavier"))
    with pytest.raises(InitbenchError, match="residual branches"):
        Spec(inits=("rezero",), model="cnn")
    result = invoke("compare", "--inits", "skipinit", "--dataset", "digits")
    assert result.exit_code == 2
    assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1


def test_default_keys_are_unchanged():
    """--norm none and --dtype float32 add nothing to spec.json or the key (values on main)."""
    assert Spec().training_key() == "d614a923579012c2"
    assert Spec(model="cnn").training_key() == "4d5ba6aa0d250921"
    assert "norm" not in Spec().to_dict() and "dtype" not in Spec().to_dict()
    assert Spec(model="resmlp").training_key() != Spec(model="resmlp", norm="layer").training_key()
    assert Spec().training_key() != Spec(dtype="bfloat16").training_key()


# ---------------------------------------------------------------- each initializer's property


def test_fixup_branch_std_within_one_percent_of_its_formula(digits):
    """Fixup (authors' code): N(0, 2/fan_out)·L^(-1/2) for m = 2; last layers, head 0."""
    spec = Spec(inits=("fixup",), model="resmlp", hidden=(256,) * 4, dataset="digits")
    params = flat(starts.cell_starts(spec, [("fixup", 0)], digits).params)
    for i in range(4):
        std = params[f"block_{i}/dense_0/kernel"].std()
        assert std == pytest.approx(math.sqrt(2 / 256) * 4 ** -0.5, rel=0.01)
        assert not params[f"block_{i}/dense_1/kernel"].any()
        assert params[f"block_{i}/gate"] == 1
    assert not params["head/kernel"].any() and not params["head/bias"].any()
    assert params["stem/kernel"].std() == pytest.approx(math.sqrt(2 / 256), rel=0.02)


def test_skipinit_and_rezero_start_every_gate_at_zero(digits):
    spec = Spec(inits=("rezero",), model="resmlp", hidden=(8,) * 3, dataset="digits")
    params = flat(starts.cell_starts(spec, [("rezero", 0)], digits).params)
    assert [params[f"block_{i}/gate"] for i in range(3)] == [0, 0, 0]
    assert params["block_0/dense_1/kernel"].std() > 0  # the branch itself is drawn


def test_zero_matrix_is_the_authors_hand_computed():
    """W [out, in] = eye(out, in) when out <= in; else H_p[:out, :in] / 2^(k/2)."""
    np.testing.assert_array_equal(modern_inits.zero_matrix(3, 2), np.eye(2, 3).T)
    h4 = np.array([[1, 1], [1, -1], [1, 1], [1, -1]]) / 2.0  # H_4[:, :2] / 2^(2/2)
    np.testing.assert_array_equal(modern_inits.zero_matrix(2, 4), h4.T)
    h = modern_inits.zero_matrix(3, 8)  # k = 3, p = 8: entries ±2^(-3/2)
    np.testing.assert_allclose(np.abs(h), 2 ** -1.5)


def test_zero_cells_are_bitwise_equal_across_seeds(digits):
    spec = Spec(inits=("zero",), model="resmlp", hidden=(16,) * 2, dataset="digits")
    built = starts.cell_starts(spec, [("zero", s) for s in (0, 1, 7)], digits).params
    for leaf in jax.tree.leaves(built):
        assert np.array_equal(leaf[0], leaf[1]) and np.array_equal(leaf[0], leaf[2])
    params = flat(built)
    assert not params["block_0/dense_1/kernel"].any()  # the residual variant: last layer 0
    np.testing.assert_array_equal(params["block_0/dense_0/kernel"], np.eye(16))


def test_idinit_is_the_padded_identity_and_epsilon_on_branch_ends(digits):
    np.testing.assert_array_equal(modern_inits.identity_like(2, 4),
                                  [[1, 0, 1, 0], [0, 1, 0, 1]])
    spec = Spec(inits=("idinit",), model="resmlp", hidden=(16,) * 2, dataset="digits")
    params = flat(starts.cell_starts(spec, [("idinit", 0)], digits).params)
    np.testing.assert_array_equal(params["stem/kernel"], modern_inits.identity_like(64, 16))
    np.testing.assert_allclose(params["block_1/dense_1/kernel"], 1e-6 * np.eye(16), rtol=1e-6)


def test_delta_orthogonal_is_zero_off_centre_and_orthogonal_at_the_centre(digits):
    spec = Spec(inits=("delta_orthogonal",), model="cnn", dataset="digits")
    params = flat(starts.cell_starts(spec, [("delta_orthogonal", 0)], digits).params)
    for name, (cin, cout) in (("conv_0/kernel", (1, 8)), ("conv_1/kernel", (8, 16))):
        kernel = params[name]
        centre = kernel[1, 1]
        off = kernel.copy()
        off[1, 1] = 0
        assert not off.any()
        gram = centre @ centre.T if cin <= cout else centre.T @ centre
        np.testing.assert_allclose(gram, np.eye(min(cin, cout)), atol=1e-5)
    wide_in = initializers.get("delta_orthogonal")(jax.random.key(0), (3, 3, 16, 4))
    centre = np.asarray(wide_in[1, 1])
    np.testing.assert_allclose(centre.T @ centre, np.eye(4), atol=1e-5)
    assert initializers.canonical("delta") == "identity"  # the alias keeps its meaning


def test_metainit_lowers_its_own_objective_and_records_it(digits):
    """From he_normal on 4 unnormalized blocks (its gradient quotient is large), MetaInit
    lowers the quotient; only the kernels' norms move."""
    spec = Spec(inits=("metainit",), model="resmlp", hidden=(8,) * 3, dataset="digits")
    built = starts.cell_starts(spec, [("metainit", 0), ("metainit", 2)], digits)
    for record in built.lsuv_passes:
        steps, before, after, kept = record
        # descending, it at least halves the quotient (0.36 and 0.002 of the start for these
        # seeds); a step uphill, kept only where momentum happened to undershoot, does not
        assert steps == metainit.STEPS and after < before / 2 and 0 < kept <= steps
    network = networks.resolve(spec, digits.num_classes, digits.image_shape)
    drawn = networks.draw(spec, network, "metainit", model.init_key("metainit", 0))
    kernel = built.params["block_1"]["dense_0"]["kernel"][0]
    start = np.asarray(drawn["block_1"]["dense_0"]["kernel"])
    cosine = np.sum(kernel * start) / np.linalg.norm(kernel) / np.linalg.norm(start)
    assert abs(cosine) == pytest.approx(1.0, abs=1e-5)  # only the norm moved
    assert np.linalg.norm(kernel) != pytest.approx(np.linalg.norm(start), rel=1e-3)


def test_gradient_quotient_is_hand_computed_for_a_quadratic():
    """L = a·w²/2: g = a·w, Hg = a²·w, GQ = |(g - Hg)/g - 1| = a."""
    gq = metainit.gradient_quotient(lambda p: 0.5 * 3.0 * jnp.sum(p["w"] ** 2),
                                    {"w": jnp.array([1.0, -2.0])}, eps=0.0)
    assert float(gq) == pytest.approx(3.0)


def test_the_card_shows_each_property(digits):
    result = invoke("inspect", "--model", "resmlp", "--hidden", "16x2", "--init", "fixup",
                    "--dataset", "digits", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert any(line.startswith("fixup:") and line.endswith("zero: yes")
               for line in document["properties"])
    rows = {row["path"]: row for row in document["parameters"]}
    assert rows["block_0/dense_1/kernel"]["expected_std"] == 0
    assert rows["block_0/gate"]["rule"].endswith("starts at 1")
    spec = Spec(inits=("zero",), model="resmlp", hidden=(16,) * 2, dataset="digits")
    _, lines = starts.init_card_and_properties(spec, "zero", 0, digits)
    assert "bitwise equal to another seed's draw: yes" in lines[0]
    cnn = Spec(inits=("delta_orthogonal",), model="cnn", dataset="digits")
    _, lines = starts.init_card_and_properties(cnn, "delta_orthogonal", 0, digits)
    assert "largest off-centre |w| 0;" in lines[0]


@pytest.mark.parametrize("model, hidden, init", [
    ("resmlp", (64,) * 4, "fixup"), ("rescnn", (8, 8), "fixup"), ("rescnn", (8, 8), "idinit"),
    ("cnn", None, "identity")])
def test_the_card_says_each_rule_once_and_fits_100_columns(digits, model, hidden, init):
    """The rule column holds only each layer's factor on a rule said once under the table;
    at 100 columns no line is wider and each row's rule cell sits whole on its row's line,
    at 80 nothing is wider either; the long formulas (fixup's, IDInit's) wrap at spaces."""
    import io

    from rich.console import Console

    from initbench.commands.inspect import card_renderables

    spec = Spec(inits=(init,), model=model, dataset="digits",
                **({"hidden": hidden} if hidden else {}))
    rows, _ = starts.init_card_and_properties(spec, init, 0, digits)
    document = {"model": model, "init": init, "seed": 0, "dataset": "digits",
                "image_shape": list(digits.image_shape), "parameters": rows}
    legend = {}
    for row in rows:  # one formula per key: the column's text points at one rule
        key, formula = row["rule_legend"]
        assert legend.setdefault(key, formula) == formula, row["path"]
        assert row["rule_short"].startswith(key), row  # the key, then its factor
    for width in (100, 80):
        console = Console(width=width, file=io.StringIO(), record=True)
        for renderable in card_renderables(document):
            console.print(renderable)
        lines = console.export_text().splitlines()
        assert max(map(len, lines)) <= width, "\n".join(lines)
        flat = " ".join(" ".join(lines).split())
        for key, formula in legend.items():
            assert f"{key}: {' '.join(formula.split())}" in flat, (key, formula)
        for row in rows:
            assert any(f" {row['rule_short']} " in line and (width < 100 or row["path"] in line)
                       for line in lines), (width, row)


@pytest.mark.parametrize("model, hidden", [("mlp", (256, 256)), ("resmlp", (64,) * 2)])
def test_a_parameterized_card_fits_100_columns_with_whole_paths(digits, model, hidden):
    """Under --param mup the parameterization's columns (role, stored factor, multiplier,
    effective std, rate) are a table of their own: at 100 columns no line is wider and
    every parameter path sits whole on one line of each table (one table holding every
    column folded them into fragments such as 'dense' / '_0/ke' / 'rnel')."""
    import io

    from rich.console import Console

    from initbench.commands.inspect import card_renderables

    spec = Spec(inits=("he_normal",), model=model, hidden=hidden, dataset="digits",
                param="mup", base_width=hidden[0] // 2)
    rows, _ = starts.init_card_and_properties(spec, "he_normal", 0, digits)
    document = {"model": model, "init": "he_normal", "seed": 0, "dataset": "digits",
                "image_shape": list(digits.image_shape), "parameters": rows,
                "param": "mup", "base_width": spec.base_width, "lr": 0.01}
    console = Console(width=100, file=io.StringIO(), record=True)
    tables = card_renderables(document)
    for renderable in tables:
        console.print(renderable)
    lines = console.export_text().splitlines()
    assert max(map(len, lines)) <= 100, "\n".join(lines)
    kernels = [row for row in rows if row["path"].endswith("kernel")]
    assert kernels and all(sum(f" {row['path']} " in line for line in lines) == 2
                           for row in kernels), "\n".join(lines)  # whole, in both tables
    roles = [line.split()[5] for line in lines if " output " in line or " input " in line]
    assert "output" in roles and "input" in roles, "\n".join(lines)


def test_resmlp_trains_in_the_shared_grid(digits):
    """One compiled grid: he_normal, fixup, skipinit, zero on a 2-block resmlp with batch
    norm; every cell finite, and ZerO's weight draw the same on both seeds."""
    spec = Spec(inits=("he_normal", "fixup", "skipinit", "zero"), seeds=(0, 1), epochs=1,
                batch_size=50,
                model="resmlp", hidden=(16,) * 2, norm="batch", dataset="digits")
    grid = experiment.train_grid(spec, digits, Runtime(use_cache=False),
                                 experiment.SilentReporter())
    accuracy = grid.metrics["test_accuracy"]
    assert np.isfinite(accuracy).all() and accuracy[:, :, -1].min() > 0.2
    # the epoch-0 evaluation depends on the weights only: ZerO's is the same on both seeds
    assert accuracy[3, 0, 0] == accuracy[3, 1, 0]
    assert accuracy[0, 0, 0] != accuracy[0, 1, 0]


# ---------------------------------------------------------------- bfloat16


def test_truncated_normal_in_bfloat16_keeps_its_std_and_no_values_at_the_bound():
    init = initializers.get("truncated_normal", stddev=0.02)
    values = precision.draw(init, jax.random.key(0), (512, 512), "bfloat16")
    assert values.dtype == jnp.bfloat16
    measured = precision.stats(values, precision.truncation_bound(0.02))
    assert measured["std"] == pytest.approx(0.02, rel=0.02)
    assert measured["at_bound"] < 1e-4
    clamped = np.clip(np.asarray(values, np.float32), -0.03, 0.03)  # the check can fail
    assert precision.stats(clamped, float(np.float32(0.03)))["at_bound"] > 0.1


def test_orthogonal_works_in_bfloat16_and_the_grid_trains_in_it(digits):
    q = np.asarray(precision.draw(initializers.get("orthogonal"), jax.random.key(1),
                                  (64, 32), "bfloat16"), np.float32)
    np.testing.assert_allclose(q.T @ q, np.eye(32), atol=2e-2)
    spec = Spec(inits=("orthogonal",), seeds=(0,), epochs=1, hidden=(16,), dtype="bfloat16",
                dataset="digits")
    start = starts.cell_starts(spec, [("orthogonal", 0)], digits).params
    assert {leaf.dtype for leaf in jax.tree.leaves(start)} == {np.dtype(jnp.bfloat16)}
    f32 = starts.cell_starts(spec.replace(dtype="float32"), [("orthogonal", 0)], digits).params
    np.testing.assert_array_equal(np.asarray(start["dense_0"]["kernel"], np.float32),
                                  np.asarray(f32["dense_0"]["kernel"].astype(jnp.bfloat16),
                                             np.float32))  # drawn in float32, then cast
    grid = experiment.train_grid(spec, digits, Runtime(use_cache=False),
                                 experiment.SilentReporter())
    assert grid.metrics["test_accuracy"][0, 0, -1] > 0.5


# ---------------------------------------------------------------- the phase diagram


def test_mean_field_quantities_against_closed_forms():
    # tanh, sigma_b = 0, sigma_w^2 < 1: q* = 0, so chi_1 = sigma_w^2 and xi_c = -1/ln sigma_w^2
    assert phase.chi_1("tanh", 0.5, 0.0) == pytest.approx(0.5, abs=1e-6)
    assert phase.xi_c("tanh", 0.5, 0.0) == pytest.approx(-1 / math.log(0.5), rel=1e-4)
    # ReLU: q* = sigma_b^2 / (1 - sigma_w^2/2); the critical point is sigma_w^2 = 2
    assert phase.q_star("relu", 1.0, 0.05) == pytest.approx(0.1)
    assert phase.critical_sigma_w2("relu", 0.05) == 2.0
    assert math.isinf(phase.xi_c("relu", 2.0, 0.05))
    # tanh, sigma_b^2 = 0.05: the paper's critical line sits at sigma_w^2 ~ 1.76
    assert phase.critical_sigma_w2("tanh", 0.05) == pytest.approx(1.76, abs=0.01)
    assert mean_field.c_star("tanh", 3.0, 0.05) < 1 and mean_field.c_star("tanh", 1.0, 0.05) == 1.0
    assert phase.xi_c("tanh", 1.7, 0.05) > phase.xi_c("tanh", 1.0, 0.05)


def test_agreement_counts_cells_against_three_and_twelve_xi():
    spec = phase.PhaseSpec(sigma_w2=(1.0, 2.0), depths=(2, 50), seeds=(0,))
    xi = np.array([2.0, 10.0])  # depth/xi: [1, 25] and [0.2, 5]
    accuracy = np.array([[[0.9], [0.9]], [[0.2], [0.8]]])
    result = phase.PhaseResult(spec, accuracy, xi, np.ones(2), np.ones(2))
    assert result.agreement() == {"below_3xi": 2, "below_3xi_trained": 1,
                                  "beyond_12xi": 1, "beyond_12xi_trained": 1}
    assert "1/2 (50%) of the cells with depth < 3 xi_c train" in result.agreement_line()


def test_phase_trains_with_the_shared_runner_and_writes_its_files(digits, tmp_path):
    spec = phase.PhaseSpec(sigma_w2=(0.5, 1.5), depths=(2,), seeds=(0, 1), width=16,
                           dataset="digits", epochs=3, lr=0.01, batch_size=50)
    assert spec.optimizer == "adam"
    result = phase.run_phase(spec, runtime=Runtime(), dataset=digits)
    assert result.accuracy.shape == (2, 1, 2) and np.isfinite(result.accuracy).all()
    assert result.accuracy[1, 0].min() > 0.5  # a shallow net near the critical line trains
    key = phase._weights_key(1.5, 0.05, 0)
    drawn = phase.draw_mlp(key, 1.5, 0.05, [64, 256, 10])  # the formula: N(0, 1.5/64)
    assert float(drawn["dense_0"]["kernel"].std()) == pytest.approx(math.sqrt(1.5 / 64), rel=0.02)
    phase.write(tmp_path / "ph", result)
    rows = (tmp_path / "ph" / "phase.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 and rows[0].startswith("sigma_w2,sigma_b2,depth,seed")
    assert json.loads((tmp_path / "ph" / "phase.json").read_text())["agreement"]
    assert (tmp_path / "ph" / "phase.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args", [["--sigma-w2", "a:b:c"], ["--depths", "10:5:1"],
                                  ["--activation", "gelu"], ["--threshold", "0"],
                                  ["--optimizer", "lion"]])
def test_phase_bad_input_is_one_error_line(args):
    result = invoke("phase", "--dataset", "digits", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1


def test_committed_deep_residual_results_come_from_the_make_script():
    """Every committed run of results/deep-residual was made by bench/deep_residual.sh's own
    command for it (`make deep-residual` regenerates it), and the Makefile runs the script."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    script = " ".join((root / "bench" / "deep_residual.sh").read_text().replace("\\\n", " ")
                      .split())
    assert "bench/deep_residual.sh" in (root / "Makefile").read_text()
    folders = sorted((root / "results" / "deep-residual").glob("*/spec.json"))
    assert folders
    for path in folders:
        command = json.loads(path.read_text())["command"][1:]
        args = " ".join(command[:command.index("--out")])
        assert args.replace("initbench ", "") in script.replace('"$PY" -m initbench ', ""), path
    for path in sorted((root / "results" / "deep-residual").glob("*/phase.json")):
        settings = json.loads(path.read_text())["settings"]
        flags = (f"--activation {settings['activation']}", f"--width {settings['width']}",
                 f"--seeds {len(settings['seeds'])}", f"--sigma-b2 {settings['sigma_b2']:g}")
        assert all(flag in script for flag in flags), path


def test_batch_norm_uses_the_batch_statistics():
    """--norm batch: each feature has mean 0 and variance 1 over the batch it is called on."""
    from initbench import resmlp

    x = jax.random.normal(jax.random.key(0), (64, 5)) * jnp.arange(1.0, 6.0) + 3.0
    norm = resmlp.BatchStatsNorm()
    y = norm.apply(norm.init(jax.random.key(1), x), x)
    np.testing.assert_allclose(np.mean(y, axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.var(y, axis=0), 1.0, rtol=1e-3)


def test_idinit_repeats_the_identity_along_the_longer_side():
    """I' [fan_in, fan_out] is 1 where i = j (mod min(in, out)): every row of a 6x3 kernel
    and every column of a 3x6 kernel holds exactly one 1."""
    tall, wide = modern_inits.identity_like(6, 3), modern_inits.identity_like(3, 6)
    np.testing.assert_array_equal(tall, np.vstack([np.eye(3), np.eye(3)]))
    np.testing.assert_array_equal(wide, np.hstack([np.eye(3), np.eye(3)]))
    assert np.std(tall) == pytest.approx(modern_inits.idinit_std(6, 3, 1.0))


def test_phase_agreement_counts_cells_below_3_and_beyond_12_xi():
    """Depths 10, 80, 130 with xi_c = 10: ratios 1, 8 and 13; only the first is below 3 xi_c
    and only the last beyond 12 xi_c (8 xi_c is neither)."""
    from initbench import phase

    spec = phase.PhaseSpec(sigma_w2=(1.0,), depths=(10, 80, 130), seeds=(0, 1))
    accuracy = np.array([[[0.9, 0.2], [0.9, 0.9], [0.9, 0.1]]])  # [sigma_w2, depth, seed]
    result = phase.PhaseResult(spec, accuracy, xi=np.array([10.0]), q=np.ones(1),
                               chi=np.ones(1))
    assert result.agreement() == {"below_3xi": 2, "below_3xi_trained": 1,
                                  "beyond_12xi": 2, "beyond_12xi_trained": 1}
    assert "1/2 (50%) of the cells with depth < 3 xi_c" in result.agreement_line()


def test_a_residual_run_with_layer_tracking_reopens(tmp_path):
    """--track-layers on resmlp writes one layers.csv row per drawn layer (stem, two per
    block, head: 6 for 2 blocks), and the folder reopens with every layer: the count comes
    from the rows, not from --hidden (which tells only the MLP's)."""
    from initbench import runfolder

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["compare", "--model", "resmlp", "--hidden", "8x2",
                                      "--inits", "xavier,fixup", "--seeds", "1", "--epochs", "1",
                                      "--track-layers", "--dataset", "digits", "--no-cache",
                                      "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    reopened = runfolder.read_run(out)
    assert {k: v.shape for k, v in reopened.layer_metrics.items()} == {
        "dead_fraction": (2, 1, 2, 6), "grad_norm": (2, 1, 2, 6)}
    assert np.isfinite(reopened.layer_metrics["grad_norm"]).all()
