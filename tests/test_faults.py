"""Fault injection: every bad input or fault is one `error:` line and exit code 2 (130 for
Ctrl-C), never a traceback, never a half-written folder, never a silently wrong result.

Faults that cannot really happen in a test (a full disk, EIO, a read-only file system: tests
run as root) are simulated by patching the write. Tiny nets on `digits`, 1 epoch.
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from cli_helpers import invoke, one_error

from initbench import cellcache, data, experiment, runfolder, safeio, sharding
from initbench import spec as spec_lib
from initbench.errors import InitbenchError
from initbench.runtime import Runtime

TINY = ["--dataset", "digits", "--epochs", "1", "--hidden", "16"]





def cached_cells() -> list[Path]:
    return sorted(Runtime.from_environment().cell_cache.glob("*/*-seed*.npz"))


def leftovers(parent: Path) -> list[str]:
    """Temporary folders or lock files a write left beside its target."""
    return sorted(p.name for p in Path(parent).iterdir()
                  if p.name.startswith(".") and (".tmp-" in p.name or ".old-" in p.name
                                                 or ".build-" in p.name or ".probe-" in p.name
                                                 or p.name.endswith(".lock")))


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict[str, Path]:
    """One real 2x2 compare (xavier, normal x seeds 0-1) and its cell cache."""
    root = tmp_path_factory.mktemp("faults")
    with mock.patch.dict(os.environ, {"INITBENCH_CACHE": str(root / "cache")}):
        result = invoke("compare", *TINY, "--inits", "xavier,normal", "--seeds", "2",
                        "--out", root / "grid", "-q")
    assert result.exit_code == 0, result.output
    return {"grid": root / "grid", "cache": root / "cache"}


@pytest.fixture
def warm_cache(base, monkeypatch) -> Path:
    """This test's cache holds the base grid's four cells."""
    monkeypatch.setenv("INITBENCH_CACHE", str(base["cache"]))
    return base["cache"]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())}


# ------------------------------------------------------------------ 1. seeds that collide


@pytest.mark.parametrize("seeds", ["0,4294967296", "4294967290-4294967300",
                                   "99999999999999999999", "1" * 5000, "0-99999999999"])
def test_seeds_beyond_32_bits_are_refused(seeds, tmp_path):
    line = one_error(invoke("compare", *TINY, "--seeds", seeds, "--out", tmp_path / "o"))
    assert "seed" in line
    assert not (tmp_path / "o").exists() and not cached_cells()


def test_largest_32_bit_seed_is_accepted_and_distinct_from_zero():
    import jax

    from initbench import model

    spec_lib.Spec(seeds=(0, 2**32 - 1))  # valid
    keys = [jax.random.key_data(model.data_key(s)) for s in (0, 2**32 - 1)]
    assert not np.array_equal(*keys)


# ------------------------------------------------------------------ 2. the cache key


def test_cache_key_covers_data_device_block_versions_and_code(monkeypatch):
    spec = spec_lib.Spec(inits=("xavier",), seeds=(0,), dataset="digits", hidden=(16,), epochs=1)
    digits = data.load("digits")
    key = cellcache.cache_key(spec, digits)
    assert cellcache.cache_key(spec, data.load("digits")) == key  # same content, same key
    x_train = digits.x_train.copy()
    x_train[0, 0] += 0.5
    changed = data.Dataset(digits.name, x_train, digits.y_train, digits.x_test, digits.y_test,
                           digits.num_classes, digits.image_shape, digits.source)
    assert cellcache.cache_key(spec, changed) != key  # same name, other numbers
    monkeypatch.setattr(sharding, "cells_per_block", lambda: 3)
    assert cellcache.cache_key(spec, digits) != key
    monkeypatch.undo()
    monkeypatch.setattr(cellcache, "TRAINING_CODE_VERSION", cellcache.TRAINING_CODE_VERSION + 1)
    assert cellcache.cache_key(spec, digits) != key
    monkeypatch.undo()
    import jax
    monkeypatch.setattr(jax, "__version__", "0.0.0")
    assert cellcache.cache_key(spec, digits) != key


def test_other_data_under_the_same_name_is_retrained(warm_cache, tmp_path, monkeypatch):
    original = data._load_digits

    def other_digits():
        d = original()
        return data.Dataset(d.name, d.x_train[::-1].copy(), d.y_train[::-1].copy(), d.x_test,
                            d.y_test, d.num_classes, d.image_shape, d.source)

    monkeypatch.setattr(data, "_load_digits", other_digits)
    result = invoke("compare", *TINY, "--inits", "xavier,normal", "--seeds", "2",
                    "--out", tmp_path / "o", "--json")
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "o" / "spec.json").read_text())
    assert (meta["cells_trained"], meta["cells_cached"]) == (4, 0)


# ------------------------------------------------------------------ 3. run folders


def test_a_subset_run_never_replaces_a_bigger_folder(base, warm_cache, tmp_path):
    grid = shutil.copytree(base["grid"], tmp_path / "grid")
    before = snapshot(grid)
    line = one_error(invoke("run", "--init", "xavier", *TINY, "--seeds", "1", "--out", grid))
    assert "leaves out" in line and "--inits xavier,normal --seeds 0-1" in line
    assert snapshot(grid) == before and not leftovers(tmp_path)


def test_a_superset_run_replaces_the_folder_whole(base, warm_cache, tmp_path):
    grid = shutil.copytree(base["grid"], tmp_path / "grid")
    (grid / "notes.txt").write_text("mine")
    result = invoke("compare", *TINY, "--inits", "normal,xavier", "--seeds", "2", "--out", grid,
                    "-q")
    assert result.exit_code == 0, result.output
    meta = json.loads((grid / "spec.json").read_text())
    assert meta["cells_cached"] == 4 and meta["spec"]["inits"] == ["normal", "xavier"]
    assert (grid / "notes.txt").read_text() == "mine"  # the user's file moved along
    assert (grid / "curves.png").stat().st_size > 0 and not leftovers(tmp_path)


def test_a_folder_of_other_files_is_refused(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    one_error(invoke("run", *TINY, "--seeds", "1", "--out", tmp_path / "mine"))
    assert snapshot(tmp_path / "mine") == {"thesis.tex": b"x"}


def test_a_second_writer_is_refused_naming_the_first(tmp_path):
    """Another process holds the folder's lock: the run is refused before training."""
    out = tmp_path / "o"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom initbench import safeio\n"
         f"with safeio.folder_lock({str(out)!r}):\n    print('locked', flush=True)\n"
         "    time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    try:
        assert holder.stdout.readline().strip() == "locked"
        line = one_error(invoke("run", *TINY, "--seeds", "1", "--out", out))
        assert f"pid {holder.pid}" in line and "another initbench process" in line
        assert not out.exists() and not cached_cells()
    finally:
        holder.kill()
        holder.wait()
    assert invoke("run", *TINY, "--seeds", "1", "--out", out, "-q").exit_code == 0


def test_default_folders_started_together_never_collide(tmp_path):
    got: list[Path] = []
    threads = [threading.Thread(target=lambda: got.append(safeio.reserve_folder(tmp_path, "run-x")))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(got)) == 8 and all(p.is_dir() for p in got)


def test_a_failed_default_run_leaves_no_empty_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sharding, "free_bytes", lambda device: 1000)
    one_error(invoke("run", *TINY, "--seeds", "1"))
    assert not list((tmp_path / "results").glob("run-*"))


# ------------------------------------------------------------------ 4. writes that fail


@pytest.mark.parametrize("make_out", [
    lambda tmp: Path("/proc/initbench-x"),
    lambda tmp: Path("/sys/initbench-x"),
    lambda tmp: tmp / ("n" * 300),
    lambda tmp: Path(""),
    lambda tmp: Path("."),
    lambda tmp: (tmp / "dangling").symlink_to(tmp / "nowhere") or tmp / "dangling",
    lambda tmp: ((tmp / "loop_a").symlink_to(tmp / "loop_b"),
                 (tmp / "loop_b").symlink_to(tmp / "loop_a")) and tmp / "loop_a",
    lambda tmp: (tmp / "file").write_text("x") and tmp / "file" / "sub",
])
def test_unwritable_out_fails_before_training(make_out, tmp_path):
    out = make_out(tmp_path)
    line = one_error(invoke("run", *TINY, "--seeds", "1", "--out", out))
    assert "out" in line
    assert not cached_cells()


@pytest.mark.parametrize("error", [errno.EROFS, errno.EACCES])
def test_read_only_out_fails_before_training(error, tmp_path, monkeypatch):
    real = os.mkdir

    def mkdir(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path / "ro")):
            raise OSError(error, os.strerror(error), str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    line = one_error(invoke("run", *TINY, "--seeds", "1", "--out", tmp_path / "ro" / "o"))
    assert "cannot write --out" in line and os.strerror(error) in line
    assert not cached_cells()


def test_a_disk_too_small_is_refused_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1, 1, 1000))
    line = one_error(invoke("run", *TINY, "--seeds", "1", "--out", tmp_path / "o"))
    assert "not enough disk space" in line
    assert not (tmp_path / "o").exists() and not cached_cells()


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EIO])
def test_a_failing_write_keeps_the_old_folder_whole(base, warm_cache, tmp_path, monkeypatch,
                                                    error):
    grid = shutil.copytree(base["grid"], tmp_path / "grid")
    before = snapshot(grid)

    def fsync(fd):
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(os, "fsync", fsync)
    line = one_error(invoke("compare", *TINY, "--inits", "xavier,normal", "--seeds", "2",
                            "--out", grid), after_results=True)
    assert os.strerror(error) in line and "cached" in line
    assert snapshot(grid) == before and not leftovers(tmp_path)


def test_a_failing_write_of_a_new_folder_leaves_nothing(warm_cache, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "fsync", mock.Mock(side_effect=OSError(errno.ENOSPC, "No space")))
    one_error(invoke("compare", *TINY, "--inits", "xavier,normal", "--seeds", "2",
                     "--out", tmp_path / "o"), after_results=True)
    assert not (tmp_path / "o").exists() and not leftovers(tmp_path)


def test_a_cache_write_failing_mid_run_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(cellcache, "save_cell", mock.Mock(
        side_effect=OSError(errno.EIO, "Input/output error", "/cache/x.npz")))
    line = one_error(invoke("run", *TINY, "--seeds", "1", "--out", tmp_path / "o", "-q"))
    assert "/cache/x.npz" in line and "cached" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("cache", ["file", "", "readonly"])
def test_an_unusable_cache_fails_before_training(cache, tmp_path, monkeypatch):
    if cache == "file":
        (tmp_path / "cachefile").write_text("x")
        monkeypatch.setenv("INITBENCH_CACHE", str(tmp_path / "cachefile"))
    elif cache == "":
        monkeypatch.setenv("INITBENCH_CACHE", "")
    else:
        monkeypatch.setenv("INITBENCH_CACHE", str(tmp_path / "ro-cache"))
        real = os.mkdir
        monkeypatch.setattr(os, "mkdir", lambda p, *a, **k: (
            (_ for _ in ()).throw(PermissionError(errno.EROFS, "Read-only file system", str(p)))
            if "ro-cache" in str(p) else real(p, *a, **k)))
    line = one_error(invoke("run", *TINY, "--seeds", "1", "--out", tmp_path / "o"))
    assert "INITBENCH_CACHE" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", [
    ["report", "{grid}", "--out", "/proc/initbench-x"],
    ["export", "{grid}", "--out", "/proc/initbench-x.csv"],
    ["plot", "{grid}", "--out", "/proc/initbench-x.png"],
    ["export", "{grid}", "--out", "{tmp}/" + "n" * 300 + ".md"],
    ["report", "{grid}", "--out", "{tmp}/dangling"],
])
def test_report_export_plot_outputs_that_cannot_be_written(command, base, tmp_path):
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    args = [a.format(grid=base["grid"], tmp=tmp_path) for a in command]
    one_error(invoke(*args))
    assert not (tmp_path / "nowhere").exists()


def test_data_import_into_an_unwritable_tfds_dir(tmp_path, monkeypatch):
    idx = tmp_path / "idx"
    idx.mkdir()
    _write_idx(idx)
    (tmp_path / "tfdsfile").write_text("x")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfdsfile"))
    line = one_error(invoke("data", "import", idx))
    assert "TFDS data dir" in line


# ------------------------------------------------------------------ 5. damaged cache files


@pytest.mark.parametrize("damage", ["truncate", "empty"])
def test_a_damaged_cell_is_set_aside_and_retrained(damage, base, tmp_path, monkeypatch):
    cache = shutil.copytree(base["cache"], tmp_path / "cache")
    monkeypatch.setenv("INITBENCH_CACHE", str(cache))
    cells = sorted(cache.glob("*/glorot_uniform-seed0.npz"))  # one per cached setting
    originals = {cell: cell.read_bytes() for cell in cells}
    for cell, content in originals.items():
        cell.write_bytes(content[: len(content) // 2] if damage == "truncate" else b"")
    result = invoke("compare", *TINY, "--inits", "xavier,normal", "--seeds", "2",
                    "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert "damaged cache file" in result.stderr and "trained again" in result.stderr
    # The run's own cell (its key, whatever TRAINING_CODE_VERSION is) was set aside and
    # written again; damaged cells of other settings are left alone.
    spec = spec_lib.Spec(inits=("xavier", "normal"), seeds=(0, 1), dataset="digits",
                         epochs=1, hidden=(16,))
    key = cellcache.cache_key(spec, data.load("digits"))
    retrained = cache / key / "glorot_uniform-seed0.npz"
    assert retrained in originals
    assert [c for c in cells if c.with_name(c.name + ".damaged").exists()] == [retrained]
    meta = json.loads((tmp_path / "o" / "spec.json").read_text())
    assert (meta["cells_trained"], meta["cells_cached"]) == (1, 3)
    # the retrained cell is bitwise the cell it replaced
    assert (tmp_path / "o" / "curves.csv").read_bytes() == (base["grid"] / "curves.csv").read_bytes()
    with np.load(retrained) as new, np.load(io.BytesIO(originals[retrained])) as old:
        assert set(new.files) == set(old.files)
        for name in old.files:
            if name != "meta":
                np.testing.assert_array_equal(new[name], old[name])


def _checkpoint_path(spec):
    dataset = data.load(spec.dataset)
    cells = [(i, s, 0, lr) for i in spec.inits for lr in spec.lr for s in spec.seeds]
    cells_key = cellcache.chunk_key(sharding.pad_cells(cells, sharding.cell_mesh()))
    return cellcache.checkpoint_path(Runtime.from_environment().cell_cache, spec, cells_key,
                                   cellcache.cache_key(spec, dataset))


@pytest.mark.parametrize("damage", [b"", b"PK\x03\x04 not a zip"])
def test_a_damaged_checkpoint_is_set_aside_not_resumed(damage, tmp_path):
    spec = spec_lib.Spec(inits=("xavier",), seeds=(0,), dataset="digits", hidden=(16,), epochs=1)
    path = _checkpoint_path(spec)
    path.parent.mkdir(parents=True)
    path.write_bytes(damage)
    result = invoke("run", *TINY, "--seeds", "1", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert "resuming" not in result.stderr and "damaged cache file" in result.stderr
    assert path.with_name(path.name + ".damaged").exists()


def test_no_cache_ignores_checkpoints(tmp_path):
    spec = spec_lib.Spec(inits=("xavier",), seeds=(0,), dataset="digits", hidden=(16,), epochs=1)
    path = _checkpoint_path(spec)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"junk")
    result = invoke("run", *TINY, "--seeds", "1", "--out", tmp_path / "o", "--no-cache")
    assert result.exit_code == 0, result.output
    assert "damaged" not in result.stderr and "resuming" not in result.stderr


# ------------------------------------------------------------------ 6. user text as markup


@pytest.mark.parametrize("name", ["[/]", "[red]xavier", "[bold]"])
def test_user_text_is_printed_verbatim(name):
    line = one_error(invoke("compare", *TINY, "--inits", name))
    assert f"'{name}'" in line


def test_an_out_with_markup_is_printed_verbatim(warm_cache, tmp_path):
    out = tmp_path / "a[/]b[red]c"
    result = invoke("compare", *TINY, "--inits", "xavier,normal", "--seeds", "2", "--out", out)
    assert result.exit_code == 0, result.output
    assert f"results written to {out}/" in result.stderr
    assert (out / "spec.json").exists()


# ------------------------------------------------------------------ 7. 8. numbers


@pytest.mark.parametrize("args, words", [
    (["--hidden", "100000x50"], "does not fit"),
    (["--hidden", "99999999999999999999"], "too large"),
    (["--hidden", "16x99999999999"], "too many layers"),
    (["--gain", "1e308"], "--gain"),
    (["--gain", "1e-300"], "--gain"),
    (["--gain", "nan"], "--gain"),
    (["--lr", "1e308"], "float32"),
    (["--lr", "1e-50"], "float32"),
    (["--lr", "inf"], "--lr"),
    (["--epochs", "99999999999999999999"], "too large"),
    (["--batch-size", "99999999999999999999"], "too large"),
    (["--lsuv-max-iter", "99999999999"], "too large"),
    (["--target", "nan"], "--target"),
])
def test_numbers_beyond_their_casts_are_refused(args, words, tmp_path):
    line = one_error(invoke("run", *TINY, "--seeds", "1", *args, "--out", tmp_path / "o"))
    assert words in line
    assert not (tmp_path / "o").exists() and not cached_cells()


# ------------------------------------------------------------------ 9. damaged run files


def _edit(base, tmp_path, file: str, change) -> Path:
    run = shutil.copytree(base["grid"], tmp_path / "run")
    path = run / file
    path.write_bytes(change(path.read_bytes()))
    return run


def _rows(text: bytes) -> list[bytes]:
    return text.splitlines(keepends=True)


@pytest.mark.parametrize("file, change, words", [
    ("spec.json", lambda b: b"\xff\xfe" + b, "not UTF-8"),
    ("spec.json", lambda b: b'{"spec": null}', "no \"spec\""),
    ("spec.json", lambda b: b"[1, 2]", "no \"spec\""),
    ("spec.json", lambda b: b.replace(b'"epochs": 1', b'"epochs": 1000000000000'), "epochs"),
    ("spec.json", lambda b: b.replace(b'"epochs": 1', b'"epochs": "1"'), "epochs"),
    ("spec.json", lambda b: b.replace(b'"seeds": [', b'"seeds": [4294967296, '), "seed"),
    ("spec.json", lambda b: b"[" * 100000, "spec.json"),
    ("curves.csv", lambda b: b + _rows(b)[1], "line 10: a second row"),
    ("curves.csv", lambda b: b"".join([*_rows(b)[:2], _rows(b)[1], *_rows(b)[3:]]),
     "second row"),
    ("curves.csv", lambda b: b.replace(b",seed,epoch", b",seed,epoch").replace(
        b"digits,xavier,zeros,0.01,0,1,", b"digits,xavier,zeros,0.01,0,-1,"), "epoch -1"),
    ("curves.csv", lambda b: b.replace(b"digits,xavier,zeros,0.01,0,1,",
                                       b"digits,xavier,zeros,0.01,0,1,9,"),
     "columns"),
    ("curves.csv", lambda b: b"".join(_rows(b)[:-1]), "truncated"),
])
def test_damaged_run_files_name_the_file(file, change, words, base, tmp_path):
    run = _edit(base, tmp_path, file, change)
    for command in (["report", run], ["export", run], ["plot", run, "--out",
                                                        tmp_path / "x.png"]):
        line = one_error(invoke(*command))
        assert file in line and words in line, line
    assert not (tmp_path / "x.png").exists()


def test_a_nan_inside_a_curve_is_divergence_when_reread(base, tmp_path):
    def nan_mid(text: bytes) -> bytes:
        lines = _rows(text)
        header = lines[0].decode().strip().split(",")
        for k, line in enumerate(lines[1:], start=1):
            row = dict(zip(header, line.decode().strip().split(",")))
            if row["init"] == "xavier" and row["seed"] == "0" and row["epoch"] == "0":
                row["test_loss"] = "nan"
                lines[k] = (",".join(row[c] for c in header) + "\n").encode()
        return b"".join(lines)

    run = _edit(base, tmp_path, "curves.csv", nan_mid)
    result = invoke("report", run, "--json")
    assert result.exit_code == 0, result.output
    rows = {r["init"]: r for r in json.loads(result.stdout)["summary"]}
    assert rows["xavier"]["diverged"] == 1 and rows["normal"]["diverged"] == 0


# ------------------------------------------------------------------ 10. other paths


def _write_idx(directory: Path, damage_deflate: bool = False) -> None:
    def idx(magic: int, shape: tuple, body: bytes) -> bytes:
        head = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in shape)
        return head + body

    files = {
        "train-images-idx3-ubyte": idx(2051, (2, 28, 28), bytes(2 * 784)),
        "train-labels-idx1-ubyte": idx(2049, (2,), bytes([1, 2])),
        "t10k-images-idx3-ubyte": idx(2051, (1, 28, 28), bytes(784)),
        "t10k-labels-idx1-ubyte": idx(2049, (1,), bytes([3])),
    }
    for name, content in files.items():
        packed = gzip.compress(content)
        if damage_deflate and name.startswith("train-images"):
            packed = packed[:10] + bytes(b ^ 0x5A for b in packed[10:-8]) + packed[-8:]
        (directory / f"{name}.gz").write_bytes(packed)


def test_damaged_deflate_data_in_an_idx_file(tmp_path):
    _write_idx(tmp_path, damage_deflate=True)
    line = one_error(invoke("data", "import", tmp_path))
    assert "train-images-idx3-ubyte.gz" in line


def test_no_command_prints_help_without_a_bare_error_line():
    result = invoke()
    assert result.exit_code == 2 and "Usage" in result.output
    assert "error:" not in result.output


def test_ctrl_c_says_finished_cells_are_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(experiment, "train_grid", mock.Mock(side_effect=KeyboardInterrupt))
    line = one_error(invoke("run", *TINY, "--seeds", "1", "--out", tmp_path / "o"), code=130)
    assert "interrupted: finished cells are cached" in line
    assert not (tmp_path / "o").exists() and not leftovers(tmp_path)


def test_num_processes_zero():
    line = one_error(invoke("run", *TINY, "--distributed", "--coordinator-address", "h:1",
                            "--num-processes", "0", "--process-id", "0"))
    assert "at least 1" in line


def test_baseline_accepts_an_alias_inits_accepts(warm_cache, base, tmp_path):
    result = invoke("compare", *TINY, "--inits", "xavier,normal", "--seeds", "2",
                    "--baseline", "glorot_uniform", "--out", tmp_path / "o", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"][0]["baseline"] == "xavier"
    report = invoke("report", base["grid"], "--baseline", "glorot_uniform", "--json")
    assert report.exit_code == 0, report.output
    one_error(invoke("report", base["grid"], "--baseline", "he_normal"))


def test_an_unexpected_os_error_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(experiment, "train_grid", mock.Mock(
        side_effect=OSError(errno.EIO, "Input/output error", "/somewhere")))
    line = one_error(invoke("run", *TINY, "--seeds", "1", "--out", tmp_path / "o"))
    assert "/somewhere" in line and "Input/output error" in line


def test_check_replaces_is_a_library_call(base):
    with pytest.raises(InitbenchError, match="leaves out"):
        runfolder.check_replaces(base["grid"], spec_lib.Spec(
            inits=("xavier",), seeds=(0,), dataset="digits", hidden=(16,), epochs=1))
