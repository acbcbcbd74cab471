"""Never silently wrong, part two: the model fingerprint sees imported helpers, merges
compare data and every setting, labels say what was drawn, no imports in background threads,
and the remaining faults are one line with the right exit code. Tiny nets on `digits`."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from cli_helpers import error_line as one_error
from cli_helpers import invoke

from initbench import cellcache, data, errors, merges, networks, results, runfolder, safeio
from initbench.spec import Spec

TINY = ["--dataset", "digits", "--epochs", "1", "--hidden", "16"]






# ---------------------------------------------------------------- the model fingerprint


def test_model_fingerprint_changes_with_an_imported_helper(tmp_path, monkeypatch):
    helper = tmp_path / "ib_width_helper.py"
    factory = tmp_path / "net.py"
    factory.write_text(textwrap.dedent("""
        import flax.linen as nn
        import ib_width_helper

        class Net(nn.Module):
            num_classes: int

            @nn.compact
            def __call__(self, x):
                x = x.reshape(x.shape[0], -1)
                x = nn.relu(nn.Dense(ib_width_helper.WIDTH)(x))
                return nn.Dense(self.num_classes)(x)

        def make(num_classes):
            return Net(num_classes)
    """))
    spec = Spec(model=f"{factory}:make", dataset="digits")

    def key_with(width):
        helper.write_text(f"WIDTH = {width}\n")
        # a fresh process imports the helper afresh; here, forget both modules
        sys.modules.pop("ib_width_helper", None)
        networks._load_cached.cache_clear()
        return networks.fingerprint(spec, 10, (8, 8, 1))

    narrow, wide, narrow_again = key_with(8), key_with(64), key_with(8)
    assert narrow != wide
    assert narrow == narrow_again
    assert narrow.startswith("make@sha256:")


# ---------------------------------------------------------------- merges compare everything


def tiny_run(seeds=(0, 1), data_fingerprint="a" * 64, **changes) -> results.RunResult:
    """A hand-built 2-init run of 1 epoch (no training)."""
    import numpy as np

    spec = Spec(inits=("xavier", "normal"), seeds=tuple(seeds), dataset="digits", hidden=(16,),
                epochs=1).replace(**changes)
    metrics = {name: np.full((2, len(seeds), 2), 0.5) for name in results.METRICS}
    return results.RunResult(spec, metrics, {"data_fingerprint": data_fingerprint})


def test_merge_refuses_runs_trained_on_different_data():
    with pytest.raises(errors.InitbenchError) as err:
        merges.merge_runs([tiny_run((0, 1)), tiny_run((2, 3), data_fingerprint="b" * 64)],
                           ["A", "B"])
    assert "A and B were trained on different data under the name digits" in str(err.value)
    # --allow-mixed does not put different data side by side either
    with pytest.raises(errors.InitbenchError):
        merges.merge_runs([tiny_run((0, 1)), tiny_run((0, 1), data_fingerprint="b" * 64,
                                                       lr=0.1)], ["A", "B"], allow_mixed=True)
    assert merges.merge_runs([tiny_run((0, 1)), tiny_run((2, 3))]).seeds == [0, 1, 2, 3]


def test_merge_names_the_first_differing_setting_even_a_default_left_out():
    # val_fraction is left out of spec.json when unset: it still names the difference
    with pytest.raises(errors.InitbenchError) as err:
        merges.merge_runs([tiny_run((0, 1)), tiny_run((2, 3), val_fraction=0.2)], ["A", "B"])
    assert "different training settings (val_fraction None vs 0.2)" in str(err.value)
    with pytest.raises(errors.InitbenchError) as err:
        merges.merge_runs([tiny_run((0, 1)), tiny_run((2, 3), lr=0.1, epochs=1)], ["A", "B"])
    assert "(lr 0.01 vs 0.1)" in str(err.value)




def test_a_tampered_parsed_split_is_rebuilt_not_trusted():
    import numpy as np

    from initbench.paths import user_cache_dir

    clean = data._load_digits()
    [cached] = user_cache_dir("datasets").glob("digits-split1-*.npz")
    with np.load(cached) as saved:
        arrays = {name: saved[name] for name in saved.files}
    arrays["y_train"] = np.roll(arrays["y_train"], 1)  # the labels permuted, the hash kept
    with open(cached, "wb") as handle:
        np.savez(handle, **arrays)
    again = data._load_digits()
    np.testing.assert_array_equal(again.y_train, clean.y_train)
    assert data.fingerprint(again) == data.fingerprint(clean)
    with np.load(cached) as saved:  # and the cache holds the clean split again
        np.testing.assert_array_equal(saved["y_train"], clean.y_train)


# ---------------------------------------------------------------- options that change nothing


@pytest.mark.parametrize("args, expected", [
    (["--inits", "xavier,normal", "--gain", "2"],
     "--gain 2 has no effect on normal (no gain in its formula)"),
    (["--inits", "zeros,he_normal", "--gain", "2"], "--gain 2 has no effect on zeros"),
    (["--inits", "orthogonal,xavier", "--mode", "fan_in"], "--mode fan_in has no effect on orthogonal"),
    (["--inits", "he_normal,lecun_normal", "--mode", "fan_in"],
     "--mode fan_in has no effect: it is already the mode of he_normal, lecun_normal"),
    (["--inits", "xavier,he_normal", "--model", "cnn", "--activation", "tanh"],
     "--activation has no effect with --model cnn"),
    (["--inits", "xavier,he_normal", "--model", "cnn", "--hidden", "16"],
     "--hidden has no effect with --model cnn"),
])
def test_an_option_with_no_effect_is_refused(args, expected, tmp_path):
    result = invoke("compare", "--dataset", "digits", "--epochs", "1", "--seeds", "1", *args,
                    "--out", tmp_path / "run")
    assert expected in one_error(result)
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- outputs onto a run's files


@pytest.fixture(scope="module")
def one_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one") / "run"
    result = invoke("run", *TINY, "--init", "xavier", "--seeds", "2", "--out", out, "-q")
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("command, name", [
    ("export", "curves.csv"), ("export", "summary.csv"), ("export", "spec.json"),
    ("plot", "curves.png"), ("plot", "link.png"),
])
def test_no_output_lands_on_a_run_folders_own_files(one_run, tmp_path, command, name):
    other = tmp_path / "other"
    import shutil

    shutil.copytree(one_run, other)
    (other / "link.png").symlink_to(other / "curves.png")  # a link to a run's file counts
    before = {p.name: p.read_bytes() for p in other.iterdir() if p.is_file()}
    line = one_error(invoke(command, one_run, "--out", other / name))
    assert "of the run folder" in line and "overwrite the run's own file" in line
    assert {p.name: p.read_bytes() for p in other.iterdir() if p.is_file()} == before


def test_run_folder_records_the_data_fingerprint(one_run):
    recorded = json.loads((one_run / "spec.json").read_text())["data_fingerprint"]
    assert recorded == data.fingerprint(data.load("digits"))


def test_a_run_figure_may_be_drawn_again_in_its_own_folder(one_run, tmp_path):
    result = invoke("plot", one_run, "--out", one_run / "curves.png")
    assert result.exit_code == 0, result.output
    result = invoke("export", one_run, "--out", one_run / "summary.md")
    assert result.exit_code == 0, result.output


# ---------------------------------------------------------------- no imports off the main thread


_RECORD_OFF_MAIN_IMPORTS = """
import sys, threading
off_main = []

def record(event, args):
    if event in ("import", "ctypes.dlopen") and threading.current_thread() is not threading.main_thread():
        off_main.append(f"{threading.current_thread().name}: {args[0]}")

sys.addaudithook(record)
from initbench.cli import run
code = run()
assert "matplotlib" in sys.modules, "the figure was not drawn"
print("OFF-MAIN IMPORTS:", sorted(set(off_main)), file=sys.stderr)
sys.stderr.flush()
sys.exit(code)
"""


def test_a_run_imports_nothing_in_a_background_thread(tmp_path):
    """A dlopen in a background thread can deadlock with one in the main thread (the loader
    lock against the GIL): a whole run, its figure and files included, imports in the main
    thread only (a fresh process, so that matplotlib is not imported yet)."""
    import os
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", _RECORD_OFF_MAIN_IMPORTS, "run", *TINY, "--init", "xavier",
         "--seeds", "1", "--out", str(tmp_path / "run"), "-q"],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).parents[1],
        env={**os.environ, "INITBENCH_CACHE": str(tmp_path / "cache")})
    assert out.returncode == 0, out.stderr
    assert "OFF-MAIN IMPORTS: []" in out.stderr, out.stderr


# ---------------------------------------------------------------- one line, the right code


INT_LOGITS = (Path(__file__).parent / "fixtures" / "int_logits_net.py").read_text()


@pytest.mark.parametrize("command", ["run", "compare", "probe"])
def test_a_model_with_integer_logits_is_one_line(tmp_path, command):
    factory = tmp_path / "intnet.py"
    factory.write_text(INT_LOGITS)
    args = {"run": ["--init", "xavier", "--epochs", "1"], "probe": ["--inits", "xavier"],
            "compare": ["--inits", "xavier,he_normal", "--epochs", "1"]}[command]
    result = invoke(command, "--model", f"{factory}:make", "--dataset", "digits", *args,
                    "--out", tmp_path / "out")
    assert "returns logits of dtype int32; expected floating point" in one_error(result)


def _cli_subprocess(prelude: str, *args, env=None, timeout=300):
    """Run the CLI in a fresh process after `prelude` (Python code); (returncode, stderr)."""
    import os
    import subprocess

    code = prelude + "\nfrom initbench.__main__ import main\nmain()\n"
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                         text=True, timeout=timeout, cwd=Path(__file__).parents[1],
                         env={**os.environ, **(env or {})})
    return out.returncode, out.stderr


def test_ctrl_c_while_importing_is_one_line_and_130():
    prelude = textwrap.dedent("""
        import sys

        class Interrupt:  # Ctrl-C while the CLI (JAX, rich, typer...) is being imported
            def find_spec(self, name, path=None, target=None):
                if name == "initbench.cli":
                    raise KeyboardInterrupt

        sys.meta_path.insert(0, Interrupt())
    """)
    code, stderr = _cli_subprocess(prelude, "datasets")
    assert code == 130, stderr
    assert stderr.strip() == "error: interrupted while starting; nothing was done."


def test_sigterm_checkpoints_stops_with_143_and_the_same_command_resumes(tmp_path):
    prelude = textwrap.dedent("""
        import os, signal
        from initbench import errors, experiment, merges, runfolder, safeio
        from initbench.runner import Runner

        run_epoch = Runner.run_epoch

        def preempted(self, state, epoch):  # the scheduler's SIGTERM arrives in epoch 3
            out = run_epoch(self, state, epoch)
            if epoch == 3:
                os.kill(os.getpid(), signal.SIGTERM)
            return out

        Runner.run_epoch = preempted
    """)
    args = ["run", "--dataset", "digits", "--hidden", "16", "--epochs", "6", "--init",
            "xavier", "--seeds", "1", "-q"]
    env = {"INITBENCH_CACHE": str(tmp_path / "cache")}
    code, stderr = _cli_subprocess(prelude, *args, "--out", tmp_path / "run", env=env)
    assert code == 143, stderr
    lines = stderr.strip().splitlines()
    assert lines == ["error: terminated (SIGTERM): finished cells and the last epoch are "
                     "cached; the same command resumes."], stderr
    assert len(list((tmp_path / "cache").glob("*/checkpoint-*.npz"))) == 1
    assert not (tmp_path / "run").exists()
    resumed = invoke(*args[:-1], "--out", tmp_path / "run")
    assert resumed.exit_code == 0, resumed.output
    assert "from epoch 3 (checkpoint)" in resumed.output
    fresh = invoke(*args, "--no-cache", "--out", tmp_path / "fresh")
    assert fresh.exit_code == 0, fresh.output
    assert (tmp_path / "run" / "curves.csv").read_bytes() == (
        tmp_path / "fresh" / "curves.csv").read_bytes()


def test_a_ctrl_c_in_a_gc_callback_is_not_lost():
    """Python drops a KeyboardInterrupt raised in a GC callback: the handler records it
    there instead, and the next check raises it."""
    import gc
    import signal

    from initbench import interrupts

    frames = []

    def callback(phase, info):
        if not frames:
            frames.append(sys._getframe())

    gc.callbacks.append(callback)
    try:
        gc.collect()
        interrupts._handle(signal.SIGINT, frames[0])  # no raise inside the callback
        assert interrupts.pending() and interrupts.received() == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()
        with pytest.raises(KeyboardInterrupt):  # anywhere else it raises at once
            interrupts._handle(signal.SIGINT, sys._getframe())
    finally:
        gc.callbacks.remove(callback)
        interrupts._received.clear()


def test_a_closed_stdout_is_one_line_and_2():
    import os
    import subprocess

    out = subprocess.run(f"'{sys.executable}' -m initbench datasets >&-", shell=True,
                         capture_output=False, stderr=subprocess.PIPE, text=True, timeout=120,
                         cwd=Path(__file__).parents[1], env=dict(os.environ))
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().startswith("error: standard output is closed"), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def two_inits(tmp_path_factory) -> Path:
    """A real 2x2 compare (xavier, normal x seeds 0-1)."""
    out = tmp_path_factory.mktemp("two") / "run"
    result = invoke("compare", *TINY, "--inits", "xavier,normal", "--seeds", "2", "--out", out,
                    "-q")
    assert result.exit_code == 0, result.output
    return out


def test_plan_with_an_unreachable_effect_is_one_line(two_inits):
    line = one_error(invoke("plan", two_inits, "--effect", "1e-9"))
    assert "--effect 1e-09: normal vs xavier" in line and "give a larger --effect" in line
    assert not (two_inits / "plan.csv").exists()


def test_max_seeds_above_the_run_cap_is_refused(tmp_path):
    line = one_error(invoke("compare", *TINY, "--inits", "xavier,normal", "--seeds", "auto",
                            "--precision", "0.5", "--max-seeds", "100001",
                            "--out", tmp_path / "run"))
    assert "--max-seeds 100001 is too many: a run has at most 100,000 seeds" in line


def test_a_full_cell_cache_names_its_path_and_claims_nothing(tmp_path, monkeypatch):
    import errno
    from unittest import mock

    cache = tmp_path / "cache"
    monkeypatch.setenv("INITBENCH_CACHE", str(cache))
    real = safeio.write_atomic

    def full(path, data):
        if Path(path).suffix == ".npz":  # cells and checkpoints: the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")  # write(): no filename
        return real(path, data)

    with mock.patch.object(cellcache, "write_atomic", full):
        result = invoke("run", *TINY, "--init", "xavier", "--seeds", "1",
                        "--out", tmp_path / "run")
    line = one_error(result)
    assert f"cannot write the cell cache {cache}" in line, line
    assert "No space left" in line, line
    assert "are not cached" in line and "Finished cells are cached" not in line
    assert not list(cache.glob("*/*.npz")) and not (tmp_path / "run").exists()


PRINTING = (Path(__file__).parent / "fixtures" / "printing_net.py").read_text()


@pytest.mark.parametrize("command", ["run", "probe", "inspect"])
def test_a_models_prints_while_traced_go_to_stderr(tmp_path, command):
    factory = tmp_path / "printing.py"
    factory.write_text(PRINTING)
    args = {"run": ["--init", "xavier", "--epochs", "1", "--out", tmp_path / "out"],
            "probe": ["--inits", "xavier", "--out", tmp_path / "out"],
            "inspect": ["--init", "xavier"]}[command]
    result = invoke(command, "--model", f"{factory}:make", "--dataset", "digits", *args,
                    "--json")
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # stdout is the one JSON document
    assert "tracing Net with" in result.stderr


def test_a_run_saved_with_a_byte_order_mark_is_read(two_inits, tmp_path):
    import shutil

    copy = tmp_path / "bom"
    shutil.copytree(two_inits, copy)
    for name in ("curves.csv", "spec.json"):  # as a spreadsheet or an editor saves them
        (copy / name).write_bytes(b"\xef\xbb\xbf" + (copy / name).read_bytes())
    result = invoke("export", copy, "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout == invoke("export", two_inits, "--format", "csv").stdout


def test_plan_on_a_run_where_every_cell_diverged_says_so(two_inits, tmp_path):
    import numpy as np

    from initbench import summary

    run = runfolder.read_run(two_inits)
    for name in results.METRICS:
        run.metrics[name][..., 1:] = np.nan  # every cell diverged in its first epoch
    runfolder.write_run(tmp_path / "diverged", run, summary.summarize_all(run).csv_rows())
    line = one_error(invoke("plan", tmp_path / "diverged", "--effect", "1"))
    assert "every cell diverged" in line
    assert not (tmp_path / "diverged" / "plan.csv").exists()
