"""Study files (`--config study.toml`) and `initbench rerun RUN_DIR`."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from initbench import api, study_config
from initbench.cli import app
from initbench.commands import train
from initbench.errors import InitbenchError

STUDY = '''
inits = ["xavier", "normal"]
seeds = [0, 3]
dataset = "digits"
epochs = 2
hidden = [16]
lr = 0.01
pairs = "all"
target = 50
'''


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_a_study_file_gives_options_the_command_line_overrides_and_rerun_reproduces(tmp_path):
    (tmp_path / "study.toml").write_text(STUDY)
    first = invoke("compare", "--config", tmp_path / "study.toml", "--epochs", "1",
                   "--out", tmp_path / "run", "--quiet")
    assert first.exit_code == 0, first.output
    document = json.loads((tmp_path / "run" / "spec.json").read_text())
    spec = document["spec"]
    assert spec["inits"] == ["xavier", "normal"] and spec["seeds"] == [0, 3]
    assert spec["hidden"] == [16] and spec["dataset"] == "digits" and spec["lr"] == 0.01
    assert spec["epochs"] == 1  # the command line wins over the file's 2
    assert document["pairs"] == "all" and document["target"] == 0.5
    again = invoke("rerun", tmp_path / "run", "--out", tmp_path / "again")
    assert again.exit_code == 0, again.output
    assert "all 4 cells from the cache" in again.output
    assert "every file identical" in again.output
    rerun_doc = json.loads((tmp_path / "again" / "spec.json").read_text())
    assert rerun_doc["cells_trained"] == 0 and rerun_doc["command"][1] == "rerun"
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "again").iterdir())
    assert "pairs.csv" in names
    for name in names:
        if name != "spec.json":
            assert (tmp_path / "run" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
    for key in api.PROVENANCE_KEYS:
        document.pop(key, None), rerun_doc.pop(key, None)
    assert document == rerun_doc
    # the comparison can fail: one changed byte is named
    shutil.copytree(tmp_path / "run", tmp_path / "edited")
    path = tmp_path / "edited" / "summary.csv"
    path.write_text(path.read_text().replace("xavier", "xavieR", 1))
    assert api.compare_folders(tmp_path / "run", tmp_path / "edited")[1] == ["summary.csv"]


def test_rerun_refuses_changed_data_before_training(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 4)).astype(np.float32), np.tile([0, 1, 2], 20)
    npz = tmp_path / "d.npz"
    np.savez(npz, x_train=x[:40], y_train=y[:40], x_test=x[40:], y_test=y[40:])
    first = invoke("run", "--init", "xavier", "--seeds", "1", "--dataset", npz, "--epochs", "1",
                   "--hidden", "4", "--batch-size", "20", "--out", tmp_path / "run", "--quiet")
    assert first.exit_code == 0, first.output
    np.savez(npz, x_train=x[:40] + 1, y_train=y[:40], x_test=x[40:], y_test=y[40:])
    again = invoke("rerun", tmp_path / "run", "--out", tmp_path / "again")
    assert again.exit_code == 2 and "is not the data this run used" in again.output
    assert not (tmp_path / "again").exists()


def test_rerun_of_a_folder_that_is_no_run(tmp_path):
    result = invoke("rerun", tmp_path)
    assert result.exit_code == 2 and "not an initbench run" in result.output


SAMPLES = {bool: True, int: 3, float: 0.5, str: "xavier"}


def test_every_compare_option_can_come_from_a_study_file(tmp_path):
    opts = [o for o in train.compare.options if o.name != "config"]
    lines = []
    for opt in opts:
        kinds = study_config._kinds(opt.type)
        value = next((SAMPLES[k] for k in (bool, int, float, str) if k in kinds), "out-dir")
        lines.append(f"{opt.flags[0].lstrip('-')} = {json.dumps(value)}")
    (tmp_path / "all.toml").write_text("\n".join(lines))
    values, given = study_config.apply(tmp_path / "all.toml", {}, set(), train.compare.options)
    assert given == set(values) == {o.name for o in opts}


@pytest.mark.parametrize("text, message", [
    ("batch_szie = 50", "unknown key 'batch_szie'. Did you mean 'batch-size'?"),
    ("[compare]\nepochs = 2", "unknown table 'compare'"),
    ("epochs = 'ten'", "epochs must be an integer, got 'ten'"),
    ("quiet = 1", "quiet must be true or false"),
    ("epochs = true", "epochs must be an integer, got true"),
    ("inits = [1, [2]]", "must be a list of names or numbers"),
    ("epochs = ", "is not valid TOML"),
])
def test_bad_study_files_are_one_line(tmp_path, text, message):
    (tmp_path / "s.toml").write_text(text)
    result = invoke("compare", "--config", tmp_path / "s.toml")
    assert result.exit_code == 2 and message in result.output, result.output
    assert result.output.strip().startswith("error:") and len(result.output.strip().splitlines()) == 1


def test_a_missing_study_file():
    with pytest.raises(InitbenchError, match="no such file"):
        study_config.read("nope.toml")
