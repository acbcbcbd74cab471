"""Initializers with parameters in their names and labels that say what was drawn,
--gain/--mode included: the label is a valid `--inits` entry that redraws the same cells."""

from __future__ import annotations

import csv
import hashlib
import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from initbench import init_names, initializers, model
from initbench.cli import app
from initbench.errors import InitbenchError
from initbench.spec import Spec

TINY = ["--dataset", "digits", "--epochs", "1", "--hidden", "16"]
INITS = "xavier(mode=fan_in), normal(0.01),truncated_normal( stddev = 0.02 )"
LABELS = ["xavier(mode=fan_in)", "normal(0.01)", "truncated_normal(stddev=0.02)"]
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error(result) -> str:
    """The single `error:` line of a refused command: exit 2, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------- syntax


def test_a_list_keeps_commas_inside_parentheses_and_labels_drop_whitespace():
    assert init_names.split("xavier,normal(0.01), he_normal(gain=2, mode=fan_in),zeros") == (
        "xavier", "normal(0.01)", "he_normal(gain=2, mode=fan_in)", "zeros")
    assert init_names.label("he_normal( gain = 2 , mode=fan_in )") == "he_normal(gain=2,mode=fan_in)"
    assert init_names.parse("uniform(scale=0.1)").args == (("scale", "0.1"),)
    assert init_names.with_params("xavier(gain=2)", {"mode": "fan_in"}) == (
        "xavier(gain=2,mode=fan_in)")


@pytest.mark.parametrize("text, words", [
    ("a,(b", ["'(' without its ')'"]), ("a),b", ["')' without its '('"]),
    ("a,,b", ["malformed list"]), ("normal()", ["empty parentheses"]),
    ("normal(0.01)x", ["not an initializer specifier"]),
    ("normal(a=b=c)", ["not an initializer specifier"]),
])
def test_malformed_specifiers_are_named(text, words):
    with pytest.raises(InitbenchError) as err:
        [init_names.parse(item) for item in init_names.split(text)]
    assert all(word in str(err.value) for word in words), str(err.value)


# ---------------------------------------------------------------- meaning


def _draw(name, shape=(200, 150)):
    import jax

    return np.asarray(initializers.get(name)(jax.random.key(0), shape), np.float64)


def test_parameters_reach_the_draw():
    assert _draw("normal(0.01)").std() == pytest.approx(0.01, rel=0.02)
    truncated = _draw("truncated_normal(stddev=0.02)")
    assert truncated.std() == pytest.approx(0.02, rel=0.02)
    assert np.abs(truncated).max() <= 2 * 0.02 / initializers.TRUNCATED_UNIT_STD + 1e-7
    wide = _draw("uniform(0.1)")
    assert np.abs(wide).max() <= 0.1 and np.abs(wide).max() > 0.099
    q = _draw("orthogonal(2)", (60, 40))
    np.testing.assert_allclose(q.T @ q, 4 * np.eye(40), atol=1e-4)
    # xavier with fan_in is LeCun's scale: the std and the formula say so
    assert _draw("xavier(mode=fan_in)").std() == pytest.approx(math.sqrt(1 / 200), rel=0.02)
    assert initializers.formula("xavier(mode=fan_in)") == initializers.formula("lecun_uniform")
    assert initializers.formula("he_normal(gain=2,mode=fan_avg)") == "TN(sqrt(16/(fan_in+fan_out)))"
    assert initializers.formula("normal(0.01)") == "N(0, stddev²), stddev=0.01"
    assert initializers.expected_std("uniform(0.1)", 5, 5) == pytest.approx(0.1 / math.sqrt(3))


def test_a_parameter_draws_from_its_initializers_stream():
    """normal(0.01) is normal times 0.01, seed for seed: the parameter alone differs."""
    for seed in (0, 1):
        np.testing.assert_allclose(_cell_kernel("normal(0.01)", seed),
                                   0.01 * _cell_kernel("normal", seed), rtol=1e-6)
    assert not np.allclose(_cell_kernel("normal", 0), _cell_kernel("normal", 1))


def test_the_identity_holds_every_parameter_that_changes_the_draw():
    assert initializers.canonical("normal(0.010)") == "normal(stddev=0.01)"
    assert initializers.canonical("Xavier(mode=fan_in)") == "glorot_uniform(mode=fan_in)"
    assert initializers.canonical("normal(1)") == "normal"  # a default changes nothing
    assert initializers.canonical("he_normal(mode=fan_in,gain=1)") == "he_normal"
    assert initializers.canonical("normal(0.01)") != initializers.canonical("normal(0.0100001)")
    with pytest.raises(InitbenchError, match="listed twice"):
        Spec(inits=("normal", "normal(1)"))


# A 64x8 kernel of every existing name under its cell key (seeds 0 and 1), drawn on main
# before names had parameters: existing initializers keep their numbers and keys.
MAIN_DRAWS = {
    "glorot_uniform": "c349ceda629d4523", "glorot_normal": "458d682014a98e35",
    "he_uniform": "b773ae8725e8ce39", "he_normal": "f2a1dfc895a3d650",
    "lecun_uniform": "f4243876d1017b98", "lecun_normal": "c17a5c4fa036c130",
    "torch_default": "b0aa031a154dde8a", "orthogonal": "67535e1a95188c22",
    "lsuv": "9415eb641a216919", "identity": "700c3d1f82ef7516", "normal": "8e6011af8ab6c4f4",
    "truncated_normal": "32d01f68905ac850", "uniform": "22608d89d03ed7bb",
    "zeros": "ad7facb2586fc6e9",
}


def _cell_kernel(name, seed, shape=(64, 8)):
    """A kernel of `name` drawn with its cell's key, as every network draws it."""
    import jax.numpy as jnp

    return np.asarray(initializers.get(name)(model.init_key(name, seed), shape, jnp.float32))


def test_existing_names_keep_their_numbers_labels_and_keys():
    assert initializers.names()[:len(MAIN_DRAWS)] == list(MAIN_DRAWS)  # new ones come after
    for name, expected in MAIN_DRAWS.items():
        blob = b"".join(_cell_kernel(name, seed).tobytes() for seed in (0, 1))
        assert hashlib.sha256(blob).hexdigest()[:16] == expected, name
        assert initializers.canonical(name) == name  # the cell file's name, as before
    assert Spec().inits == ("xavier", "he_normal", "lecun_normal", "orthogonal", "normal")
    assert Spec().training_key() == "d614a923579012c2"


@pytest.mark.parametrize("inits, extra, words", [
    ("xavier,normal(gain=2)", [], ["'normal(gain=2)'", "no parameter 'gain'", "stddev"]),
    ("zeros(1)", [], ["zeros takes no parameters"]),
    ("xavier(2)", [], ["gain", "mode", "name each value"]),
    ("normal(0.01", [], ["'(' without its ')'"]),
    ("normal(1e30)", [], ["stddev 1e30 is out of range"]),
    ("normal(-1)", [], ["stddev must be a positive number"]),
    ("xavier(mode=fan_avg),he_normal(mode=fan_out)", ["--mode", "fan_in"],
     ["sets mode in its name and again"]),
    ("normal(0.01)", ["--gain", "2"], ["--gain 2 has no effect on normal(0.01)"]),
])
def test_a_bad_specifier_is_one_line_naming_what_is_taken(inits, extra, words):
    line = one_error(invoke("compare", "--inits", inits, *extra, *TINY))
    assert all(word in line for word in words), line


# ---------------------------------------------------------------- labels everywhere


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory):
    """One compare with parameters in every name: (folder, its terminal output, cache)."""
    import os

    root = tmp_path_factory.mktemp("labels")
    before = os.environ.get("INITBENCH_CACHE")
    os.environ["INITBENCH_CACHE"] = str(root / "cache")
    try:
        result = invoke("compare", "--inits", INITS, *TINY, "--seeds", "2",
                        "--out", root / "run")
    finally:
        os.environ.pop("INITBENCH_CACHE") if before is None else os.environ.update(
            INITBENCH_CACHE=before)
    assert result.exit_code == 0, result.output
    return root / "run", result.output, root / "cache"


def test_the_label_is_the_name_in_every_table_file_and_figure(labelled_run):
    from initbench import plots, runfolder, summary

    out, printed, cache = labelled_run
    assert all(label in printed for label in LABELS)
    assert json.loads((out / "spec.json").read_text())["spec"]["inits"] == LABELS
    assert sorted(row["init"] for row in read_csv(out / "summary.csv")) == sorted(LABELS)
    assert {row["init"] for row in read_csv(out / "curves.csv")} == set(LABELS)
    run = runfolder.read_run(out)
    fig = plots.make_figure(run, summary.summarize_saved(run))
    legend = [text.get_text() for ax in fig.axes if ax.get_legend() is not None
              for text in ax.get_legend().get_texts()]
    assert sorted(text.split("  ")[0] for text in legend) == sorted(LABELS), legend
    ticks = " ".join(t.get_text().replace("\n", "") for ax in fig.axes
                     for t in ax.get_xticklabels())
    assert all(label in ticks for label in LABELS), ticks
    # cells are cached under each identity, never under the bare name
    cached = {p.name for p in cache.rglob("*.npz")}
    assert {"glorot_uniform(mode=fan_in)-seed0.npz", "normal(stddev=0.01)-seed0.npz",
            "truncated_normal(stddev=0.02)-seed1.npz"} <= cached
    assert not {"glorot_uniform-seed0.npz", "normal-seed0.npz"} & cached


def test_report_export_and_baseline_take_the_label_back(labelled_run, tmp_path):
    out, _, _ = labelled_run
    report = invoke("report", out, "--baseline", "normal(0.01)")
    assert report.exit_code == 0, report.output
    assert "vs normal(0.01)" in report.output and "xavier(mode=fan_in)" in report.output
    exported = invoke("export", out, "--format", "markdown")
    assert exported.exit_code == 0 and all(f"| {label} |" in exported.output for label in LABELS)
    rows = list(csv.DictReader(invoke("export", out, "--format", "csv").output.splitlines()))
    assert sorted(row["init"] for row in rows) == sorted(LABELS)
    import shutil

    shutil.copytree(out, tmp_path / "copy")  # the same cells twice merge (bitwise equal)
    merged = invoke("report", out, tmp_path / "copy", "--out", tmp_path / "merged")
    assert merged.exit_code == 0, merged.output
    assert {row["init"] for row in read_csv(tmp_path / "merged" / "summary.csv")} == set(LABELS)


def test_the_card_names_the_parameters_and_their_formula():
    result = invoke("inspect", "--init", "truncated_normal(0.02)", "--dataset", "digits",
                    "--hidden", "16", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["init"] == "truncated_normal(0.02)"
    kernels = [row for row in document["parameters"] if row["path"].endswith("kernel")]
    assert kernels and all(row["rule"] == "truncated_normal(0.02): TN(stddev), stddev=0.02"
                           and row["expected_std"] == pytest.approx(0.02) for row in kernels)


# ---------------------------------------------------------------- --gain and --mode


def test_gain_and_mode_are_written_into_the_labels_they_change():
    spec = Spec(inits=("xavier", "he_normal"), mode="fan_avg")
    assert spec.inits == ("xavier", "he_normal(mode=fan_avg)")  # xavier's mode already
    assert (spec.gain, spec.mode) == (None, None)
    assert Spec(inits=("orthogonal", "xavier(mode=fan_in)"), gain=1.5).inits == (
        "orthogonal(gain=1.5)", "xavier(mode=fan_in,gain=1.5)")
    assert Spec.from_dict(spec.to_dict()) == spec


def test_mode_option_and_name_are_one_initializer_with_one_label(tmp_path):
    """`--init xavier --mode fan_in` is labelled xavier(mode=fan_in) in every file, and
    `--init 'xavier(mode=fan_in)'` is the same cell (served from the cache, same curves)."""
    first = invoke("run", "--init", "xavier", "--mode", "fan_in", *TINY, "--seeds", "1",
                   "--out", tmp_path / "option")
    assert first.exit_code == 0, first.output
    assert "xavier(mode=fan_in)" in first.output
    assert [r["init"] for r in read_csv(tmp_path / "option" / "summary.csv")] == [
        "xavier(mode=fan_in)"]
    named = invoke("run", "--init", "xavier(mode=fan_in)", *TINY, "--seeds", "1",
                   "--out", tmp_path / "name")
    assert named.exit_code == 0, named.output
    meta = json.loads((tmp_path / "name" / "spec.json").read_text())
    assert (meta["cells_trained"], meta["cells_cached"]) == (0, 1)
    assert (tmp_path / "name" / "curves.csv").read_bytes() == (
        tmp_path / "option" / "curves.csv").read_bytes()
    # A folder written before labels had options (spec.json with "mode", rows "xavier")
    # still loads, relabelled.
    old = tmp_path / "option"
    document = json.loads((old / "spec.json").read_text())
    document["spec"].update(inits=["xavier"], mode="fan_in")
    (old / "spec.json").write_text(json.dumps(document))
    curves = (old / "curves.csv").read_text().replace("xavier(mode=fan_in)", "xavier")
    (old / "curves.csv").write_text(curves)
    report = invoke("report", old)
    assert report.exit_code == 0, report.output
    assert "xavier(mode=fan_in)" in report.output


def test_inits_documents_the_syntax():
    result = invoke("inits")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "NAME(VALUE)" in text and "NAME(key=VALUE, ...)" in text
    assert "truncated_normal(stddev=0.02)" in text and "xavier(mode=fan_in)" in text
