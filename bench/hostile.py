"""Try initbench as a hostile but fair user would: 150+ bad inputs and faults, in-process.

    PYTHONPATH=. python bench/hostile.py [-k WORD] [-v]

Every case runs the CLI through Typer's CliRunner in a fresh temporary folder (its own cell
cache and TFDS data dir, no network) and is checked for: the expected exit code (2 for a
refusal, 0 where the input is fine, 130 for Ctrl-C); no traceback; a failure prints exactly
one `error:` line; no temporary or lock files left beside the output; a run folder that
exists afterwards is whole (spec.json, curves.csv, summary.csv, curves.png) or, when the
command failed, byte for byte what it was before. Prints one line per problem and a count;
exits 1 if anything is wrong. Training cases use digits, hidden 16, 1 epoch (~2 minutes in
all on 2 cores).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import gzip
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

from typer.testing import CliRunner

TINY = ["--dataset", "digits", "--epochs", "1", "--hidden", "16", "--seeds", "1", "-q"]
RUN_FILES = {"spec.json", "curves.csv", "summary.csv", "curves.png"}


@dataclass
class Case:
    name: str
    args: list | Callable[[Path], list]
    codes: tuple[int, ...] = (2,)
    setup: Callable[[Path], None] | None = None
    env: dict = field(default_factory=dict)
    patch: Callable[[], contextlib.AbstractContextManager] | None = None
    out: str | None = "out"  # the folder to check afterwards, relative to the case folder
    json_stdout: bool = False  # stdout must be exactly one JSON document
    expect: str | None = None  # text the output must contain (e.g. the label of what was drawn)


def _grid(tmp: Path, name: str = "grid", inits: str = "xavier,normal", seeds: str = "2") -> Path:
    """A real run folder (cells come from the shared warm cache)."""
    from initbench.cli import app

    result = CliRunner().invoke(app, ["compare", *TINY[:-3], "--seeds", seeds, "--inits", inits,
                                      "--out", str(tmp / name), "-q"])
    assert result.exit_code == 0, result.output
    return tmp / name


def _replace_once(data: bytes, old: bytes, new: bytes) -> bytes:
    """`data` with `old` replaced; refuses a pattern that is absent (a stale case would
    otherwise test an untouched file and pass for the wrong reason)."""
    if old not in data:
        raise ValueError(f"hostile case pattern {old!r} not found")
    return data.replace(old, new)


def _edit(file: str, change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        grid = _grid(tmp)
        path = grid / file
        path.write_bytes(change(path.read_bytes()))
    return setup


def _idx(tmp: Path, damage: str = "") -> None:
    """Four tiny MNIST IDX files in tmp/idx, one damaged as named."""
    folder = tmp / "idx"
    folder.mkdir()

    def idx(magic, shape, body):
        return (magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in shape)
                + body)

    files = {"train-images-idx3-ubyte": idx(2051, (2, 28, 28), bytes(2 * 784)),
             "train-labels-idx1-ubyte": idx(2049, (2,), bytes([1, 2])),
             "t10k-images-idx3-ubyte": idx(2051, (1, 28, 28), bytes(784)),
             "t10k-labels-idx1-ubyte": idx(2049, (1,), bytes([3]))}
    for name, content in files.items():
        if name.startswith("train-images"):
            if damage == "magic":
                content = b"\0\0\0\0" + content[4:]
            elif damage == "short":
                content = content[:-10]
            elif damage == "header":
                content = content[:6]
        if name.startswith("train-labels") and damage == "label":
            content = content[:-1] + bytes([42])
        if name.startswith("t10k-labels") and damage == "missing":
            continue
        packed = gzip.compress(content)
        if damage == "deflate" and name.startswith("train-images"):
            packed = packed[:10] + bytes(b ^ 0x5A for b in packed[10:-8]) + packed[-8:]
        if damage == "gzcut" and name.startswith("train-images"):
            packed = packed[: len(packed) // 2]
        (folder / f"{name}.gz").write_bytes(packed)


def _fail_os(where: str, error: int) -> Callable[[], contextlib.AbstractContextManager]:
    """Patch `module.function` (where) to raise OSError(error)."""
    module, name = where.rsplit(".", 1)

    def patch():
        import importlib

        return mock.patch.object(importlib.import_module(module), name, side_effect=OSError(
            error, os.strerror(error), "/patched/path"))
    return patch


def _symlinks(tmp: Path) -> None:
    (tmp / "dangling").symlink_to(tmp / "nowhere")
    (tmp / "loop_a").symlink_to(tmp / "loop_b")
    (tmp / "loop_b").symlink_to(tmp / "loop_a")
    (tmp / "afile").write_text("x")
    (tmp / "other").mkdir()
    (tmp / "other" / "thesis.tex").write_text("x")


def cases() -> list[Case]:
    c: list[Case] = []
    bad = ["run", "--init", "xavier", *TINY]

    def opt(option: str, value: str, codes=(2,), base=None) -> None:
        args = list(base or bad)
        if option in args:
            k = args.index(option)
            args[k + 1] = value
        else:
            args += [option, value]
        c.append(Case(f"{option} {value[:30]!r}", [*args, "--out", "{tmp}/out"], codes))

    for v in ["", "0", "-1", "a", "1,,2", "1,1", "3-1", "0,4294967296", "4294967295-4294967296",
              "99999999999999999999", "1e3", "0x10", " ", "1-", "-", "1;2", "1.5", "0-100001",
              "1" * 5000, "0,1," * 2000, "4294967296", "٣", "+1", "1 2"]:
        opt("--seeds", v)
    for v in ["", "0", "-5", "16x0", "16x-1", "x", "16,", "1e3", "99999999999999999999",
              "16x99999999999", "100000x50", "16 x2", "abc", "16x2x2", "3000000000", "1" * 5000,
              "[/]"]:
        opt("--hidden", v)
    for v in ["0", "-1", "1.5", "abc", "99999999999999999999", "1000001"]:
        opt("--epochs", v)
    for v in ["0", "-1", "100000", "99999999999999999999", "nan"]:
        opt("--batch-size", v)
    for v in ["0", "-1", "nan", "inf", "1e308", "1e-50", "abc", "-inf", "1e39", "0.01,0.01",
              "0.1,", "0.1,0", "1:2", "1e-4:1e-1:99999", "1e-1:1e-4:3", "0.01,1e-50"]:
        opt("--lr", v)
    for v in ["0", "1", "-0.1", "nan", "abc"]:
        opt("--val-fraction", v)
    for v in ["0", "-1", "nan", "inf", "1e308", "1e-300", "abc", "2e19"]:
        opt("--gain", v)
    for v in ["bad", "[/]", ""]:
        opt("--mode", v)
    for v in ["0", "1", "nan", "-1", "inf"]:
        opt("--lsuv-tol", v)
    for v in ["0", "-1", "99999999999"]:
        opt("--lsuv-max-iter", v)
    for v in ["0", "100.5", "0.97", "nan", "-1", "inf"]:  # --target is in percent
        opt("--target", v)
    for v in ["[/]", "[red]", "", "xavir", " ", "lsuv[", "\x00"]:
        opt("--init", v)
    opt("--init", "xavier,he_normal")  # run takes one initializer; compare --inits several
    compare = ["compare", *TINY]
    for v in ["xavier,glorot_uniform", "xavier,,normal", "[/]", "[bold]x", ",", "xavier,[/]"]:
        opt("--inits", v, base=compare)
    for v in ["bad", "[b]", "Adam"]:
        opt("--optimizer", v)
    for v in ["bad", "[b]", "RELU"]:
        opt("--activation", v)
    for v in ["bad", "[/]"]:
        opt("--bias-init", v)
    for v in ["bad", "[/]", "", "mnist ", "cifar10", "fashion_mnist"]:
        opt("--dataset", v)
    for v in ["he_normal", "[/]", "glorot_uniform"]:
        opt("--baseline", v, codes=(0,) if v == "glorot_uniform" else (2,),
            base=["compare", "--inits", "xavier,normal", *TINY])
    # --out
    for name, out, codes in [
        ("out /proc", "/proc/initbench-x", (2,)), ("out /sys", "/sys/initbench-x", (2,)),
        ("out empty", "", (2,)), ("out dot", ".", (2,)), ("out root", "/", (2,)),
        ("out dangling", "{tmp}/dangling", (2,)), ("out loop", "{tmp}/loop_a", (2,)),
        ("out 300 chars", "{tmp}/" + "n" * 300, (2,)), ("out under a file", "{tmp}/afile/sub", (2,)),
        ("out is a file", "{tmp}/afile", (2,)), ("out other files", "{tmp}/other", (2,)),
        ("out /dev/null", "/dev/null", (2,)), ("out markup", "{tmp}/a[/]b[red]c", (0,)),
        ("out deep new", "{tmp}/x/y/z", (0,)), ("out 255 chars", "{tmp}/" + "n" * 255, (0,)),
        ("out newline", "{tmp}/a\nb", (0,)),
    ]:
        c.append(Case(name, ["run", *TINY, "--out", out], codes, setup=_symlinks, out=None))
    # the cache
    c.append(Case("cache is a file", ["run", *TINY, "--out", "{tmp}/out"],
                  setup=lambda t: (t / "cachefile").write_text("x"),
                  env={"INITBENCH_CACHE": "{tmp}/cachefile"}))
    c.append(Case("cache empty", ["run", *TINY, "--out", "{tmp}/out"], env={"INITBENCH_CACHE": ""}))
    c.append(Case("cache under a file", ["run", *TINY, "--out", "{tmp}/out"],
                  setup=lambda t: (t / "cachefile").write_text("x"),
                  env={"INITBENCH_CACHE": "{tmp}/cachefile/sub"}))
    c.append(Case("cache in /proc", ["run", *TINY, "--out", "{tmp}/out"],
                  env={"INITBENCH_CACHE": "/proc/initbench-cache"}))
    c.append(Case("cache dangling", ["run", *TINY, "--out", "{tmp}/out"], setup=_symlinks,
                  env={"INITBENCH_CACHE": "{tmp}/dangling"}))
    # distributed options
    for extra in (["--num-processes", "0"], ["--process-id", "-1"],
                  ["--distributed", "--coordinator-address", "h:1", "--num-processes", "0",
                   "--process-id", "0"],
                  ["--distributed", "--coordinator-address", "h:1", "--num-processes", "2",
                   "--process-id", "5"],
                  ["--distributed", "--num-processes", "2"], ["--coordinator-address", "x"]):
        c.append(Case(f"distributed {' '.join(extra)}", ["run", *TINY, *extra]))
    # faults while writing
    for error in (errno.ENOSPC, errno.EIO, errno.EROFS, errno.EDQUOT):
        c.append(Case(f"fsync {errno.errorcode[error]} over a grid",
                      ["compare", "--inits", "xavier,normal", *TINY[:-3], "--seeds", "2",
                       "--out", "{tmp}/grid"], setup=_grid, patch=_fail_os("os.fsync", error),
                      out="grid"))
        c.append(Case(f"cell save {errno.errorcode[error]}", ["run", *TINY, "--no-cache",
                                                              "--out", "{tmp}/out"],
                      patch=_fail_os("initbench.cellcache.save_cell", error)))
        c.append(Case(f"mkdir {errno.errorcode[error]}", ["run", *TINY, "--out", "{tmp}/new/out"],
                      patch=_fail_os("os.mkdir", error), out="new/out"))
    c.append(Case("disk full before training", ["run", *TINY, "--out", "{tmp}/out"],
                  patch=lambda: mock.patch("shutil.disk_usage",
                                           return_value=shutil._ntuple_diskusage(1, 1, 10))))
    c.append(Case("host memory tiny", ["run", *TINY, "--no-cache", "--out", "{tmp}/out"],
                  patch=lambda: mock.patch("initbench.sharding.free_bytes", return_value=1000)))
    c.append(Case("subset over a grid", ["run", "--init", "xavier", *TINY, "--out", "{tmp}/grid"],
                  setup=_grid, out="grid"))
    c.append(Case("other setting over a grid", ["compare", "--inits", "xavier,normal", *TINY,
                                                "--lr", "0.1", "--out", "{tmp}/grid"],
                  setup=_grid, out="grid"))
    c.append(Case("superset over a run", ["compare", "--inits", "xavier,normal", *TINY[:-3],
                                          "--seeds", "2", "--out", "{tmp}/grid", "-q"], (0,),
                  setup=lambda t: _grid(t, inits="xavier", seeds="1"), out="grid"))
    c.append(Case("locked folder", ["run", *TINY, "--out", "{tmp}/out"],
                  patch=lambda: _held_lock()))
    c.append(Case("ctrl-c", ["run", *TINY, "--out", "{tmp}/out"], (130,),
                  patch=lambda: mock.patch("initbench.experiment.train_grid",
                                           side_effect=KeyboardInterrupt)))
    c.append(Case("device OOM", ["run", *TINY, "--out", "{tmp}/out"],
                  patch=lambda: mock.patch("initbench.experiment.train_grid", side_effect=
                                           RuntimeError("RESOURCE_EXHAUSTED: out of memory"))))
    c.append(Case("MemoryError", ["run", *TINY, "--out", "{tmp}/out"],
                  patch=lambda: mock.patch("initbench.experiment.train_grid",
                                           side_effect=MemoryError)))
    for damage in (b"", b"PK\x03\x04junk", None):
        c.append(Case(f"damaged cell {damage!r}", ["compare", "--inits", "xavier,normal",
                                                   *TINY[:-3], "--seeds", "2", "--out",
                                                   "{tmp}/out2", "-q"], (0,),
                      setup=_damage_cell(damage), out="out2"))
    # run files read back
    grid = ["{tmp}/grid"]
    for name, file, change in [
        ("spec not utf-8", "spec.json", lambda b: b"\xff" + b),
        ("spec null", "spec.json", lambda b: b'{"spec": null}'),
        ("spec list", "spec.json", lambda b: b"[]"),
        ("spec empty", "spec.json", lambda b: b""),
        ("spec deep", "spec.json", lambda b: b"[" * 100000),
        ("spec epochs huge", "spec.json", lambda b: b.replace(b'"epochs": 1', b'"epochs": 10000000000')),
        ("spec epochs string", "spec.json", lambda b: b.replace(b'"epochs": 1', b'"epochs": "x"')),
        ("spec epochs float", "spec.json", lambda b: b.replace(b'"epochs": 1', b'"epochs": 1.5')),
        ("spec seeds huge", "spec.json", lambda b: b.replace(b'"seeds": [', b'"seeds": [99999999999, ')),
        ("spec inits markup", "spec.json", lambda b: b.replace(b'"xavier"', b'"[/]"')),
        ("spec hidden null", "spec.json", lambda b: b.replace(b'"hidden": [', b'"hidden": null, "x": [')),
        ("spec dataset number", "spec.json", lambda b: b.replace(b'"dataset": "digits"', b'"dataset": 5')),
        ("spec lr string", "spec.json", lambda b: b.replace(b'"lr": 0.01', b'"lr": "0.01"')),
        ("curves duplicate", "curves.csv", lambda b: b + b.splitlines(keepends=True)[1]),
        ("curves negative epoch", "curves.csv", lambda b: b.replace(b",0,1,", b",0,-1,", 1)),
        ("curves ragged long", "curves.csv", lambda b: b.replace(b"\n", b",9\n", 2)),
        ("curves ragged short", "curves.csv", lambda b: b.replace(b",0\n", b"\n", 1)),
        ("curves truncated", "curves.csv", lambda b: b[: len(b) // 2]),
        ("curves empty", "curves.csv", lambda b: b""),
        ("curves header only", "curves.csv", lambda b: b.splitlines(keepends=True)[0]),
        ("curves binary", "curves.csv", lambda b: b"\xff\xfe\x00" * 100),
        ("curves text in number", "curves.csv",
         lambda b: _replace_once(b, b"digits,xavier,zeros,0.01,0,1,",
                                 b"digits,xavier,zeros,0.01,0,one,")),
        ("curves foreign init", "curves.csv",
         lambda b: b.replace(b"digits,xavier,", b"digits,he_normal,", 1)),
        ("curves NUL", "curves.csv", lambda b: b.replace(b"xavier", b"xav\x00er", 1)),
        ("summary missing", "summary.csv", lambda b: b),  # summary.csv is not read back
    ]:
        for command in (["report", *grid], ["export", *grid], ["plot", *grid, "--out", "{tmp}/p.png"]):
            codes = (0,) if name == "summary missing" else (2,)
            c.append(Case(f"{command[0]}: {name}", command, codes, setup=_edit(file, change),
                          out=None))
    for name, args in [
        ("report nothing", ["report"]), ("report missing", ["report", "{tmp}/nope"]),
        ("report a file", ["report", "{tmp}/afile"]), ("report empty folder", ["report", "{tmp}/other"]),
        ("report twice", ["report", "{tmp}/grid", "{tmp}/grid"]),
        ("report target 101", ["report", "{tmp}/grid", "--target", "101"]),
        ("report baseline unknown", ["report", "{tmp}/grid", "--baseline", "[/]"]),
        ("report out /proc", ["report", "{tmp}/grid", "--out", "/proc/x"]),
        ("report out existing run", ["report", "{tmp}/grid", "--out", "{tmp}/grid"]),
        ("report out other files", ["report", "{tmp}/grid", "--out", "{tmp}/other"]),
        ("report out dangling", ["report", "{tmp}/grid", "--out", "{tmp}/dangling"]),
        ("export format bad", ["export", "{tmp}/grid", "--format", "[/]"]),
        ("export out /proc", ["export", "{tmp}/grid", "--out", "/proc/x.md"]),
        ("export out folder", ["export", "{tmp}/grid", "--out", "{tmp}/other"]),
        ("export out 300", ["export", "{tmp}/grid", "--out", "{tmp}/" + "n" * 300 + ".md"]),
        ("export format bad ext", ["export", "{tmp}/grid", "--out", "{tmp}/x.md", "-f", "docx"]),
        ("plot out bad ext", ["plot", "{tmp}/grid", "--out", "{tmp}/x.gif"]),
        ("plot out /proc", ["plot", "{tmp}/grid", "--out", "/proc/x.png"]),
        ("plot out /sys", ["plot", "{tmp}/grid", "--out", "/sys/x.svg"]),
        ("plot two no out", ["plot", "{tmp}/grid", "{tmp}/grid"]),
        ("report mixed", ["report", "{tmp}/grid", "{tmp}/grid2"]),
    ]:
        def setup(tmp, args=args):
            _symlinks(tmp)
            _grid(tmp)
            if "{tmp}/grid2" in args:
                from initbench.cli import app

                CliRunner().invoke(app, ["compare", "--inits", "xavier,normal", *TINY, "--lr",
                                         "0.1", "--out", str(tmp / "grid2")])
        c.append(Case(name, args, setup=setup, out=None))
    # probe
    probe = ["probe", "--inits", "xavier", "--seeds", "1", "--dataset", "digits", "--hidden", "16x2",
             "--batch-size", "10"]
    for name, extra in [("probe hidden huge", ["--hidden", "100000x50"]),
                        ("probe batch 0", ["--batch-size", "0"]),
                        ("probe seeds huge", ["--seeds", "0,4294967296"]),
                        ("probe out /proc", ["--out", "/proc/x"]),
                        ("probe out empty", ["--out", ""]),
                        ("probe init markup", ["--inits", "[/]"])]:
        args = list(probe)
        for k in range(0, len(extra), 2):
            if extra[k] in args:
                args[args.index(extra[k]) + 1] = extra[k + 1]
            else:
                args += extra[k:k + 2]
        c.append(Case(name, args, out=None))
    # data import
    for damage in ("missing", "magic", "short", "header", "label", "deflate", "gzcut"):
        c.append(Case(f"import {damage}", ["data", "import", "{tmp}/idx"],
                      setup=lambda t, d=damage: _idx(t, d), out=None))
    c.append(Case("import nothing", ["data", "import", "{tmp}/nope"], out=None))
    c.append(Case("import a file", ["data", "import", "{tmp}/afile"], setup=_symlinks, out=None))
    c.append(Case("import into a file", ["data", "import", "{tmp}/idx"], setup=_tfds_file,
                  env={"TFDS_DATA_DIR": "{tmp}/tfdsfile"}, out=None))
    # the command line itself
    for name, args, codes in [("no command", [], (2,)), ("unknown command", ["frobnicate"], (2,)),
                              ("unknown option", ["run", "--frob"], (2,)),
                              ("help", ["run", "--help"], (0,)),
                              ("option without value", ["run", "--seeds"], (2,)),
                              ("epochs not int", ["run", "--epochs", "[/]"], (2,))]:
        c.append(Case(name, args, codes, out=None))
    c.extend(_silently_wrong_cases())
    return c


_FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
_INT_LOGITS = (_FIXTURES / "int_logits_net.py").read_text()

_PRINTING = (_FIXTURES / "printing_net.py").read_text()


def _write(name: str, text: str) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        (tmp / name).write_text(text)
    return setup


def _grid_edited(change: Callable[[Path], None]) -> Callable[[Path], None]:
    """A real grid, then `change(grid)`."""
    def setup(tmp: Path) -> None:
        change(_grid(tmp))
    return setup


def _all_diverged(grid: Path) -> None:
    from initbench import results, runfolder, summary

    run = runfolder.read_run(grid)
    for name in results.METRICS:
        run.metrics[name][..., 1:] = float("nan")
    shutil.rmtree(grid)
    runfolder.write_run(grid, run, summary.summarize_run(run))


def _with_bom(grid: Path) -> None:
    for name in ("curves.csv", "spec.json"):
        (grid / name).write_bytes(b"\xef\xbb\xbf" + (grid / name).read_bytes())


def _other_data_copy(grid: Path) -> None:
    import json

    shutil.copytree(grid, grid.parent / "grid2")
    document = json.loads((grid.parent / "grid2" / "spec.json").read_text())
    document["data_fingerprint"] = "0" * 64  # the same name, other arrays
    document["spec"]["seeds"] = [2, 3]
    (grid.parent / "grid2" / "spec.json").write_text(json.dumps(document))


def _silently_wrong_cases() -> list[Case]:
    """The silently-wrong classes: options without effect, outputs onto a run's files, models that
    return integers or print, unreachable plans, full caches, merges of other data."""
    c: list[Case] = []
    run = ["run", *TINY, "--out", "{tmp}/out"]
    for name, extra in [("gain on normal", ["--init", "normal", "--gain", "2"]),
                        ("gain on zeros", ["--init", "zeros", "--gain", "2"]),
                        ("mode on orthogonal", ["--init", "orthogonal", "--mode", "fan_in"]),
                        ("mode already he's", ["--init", "he_normal", "--mode", "fan_in"])]:
        c.append(Case(name, [*run, *extra]))
    # labels say what was drawn: an option that changes an initializer is in its label,
    # and names with parameters are refused in one line when they cannot be drawn
    c.append(Case("mode on xavier is in the label",
                  ["run", *TINY[:-1], "--init", "xavier", "--mode", "fan_in", "--out",
                   "{tmp}/out"], (0,), expect="xavier(mode=fan_in)"))
    c.append(Case("gain on lecun_uniform is in the label",
                  ["run", *TINY[:-1], "--init", "lecun_uniform", "--gain", "2", "--out",
                   "{tmp}/out"], (0,), expect="lecun_uniform(gain=2"))
    for name, inits in [("parameter the initializer lacks", "normal(gain=2)"),
                        ("unbalanced parenthesis", "xavier,normal(0.01"),
                        ("the same cell twice", "normal,normal(1)"),
                        ("two positional values", "he_normal(2,fan_in)"),
                        ("a value that is not a number", "normal(abc)")]:
        c.append(Case(f"--inits {name}", ["compare", *TINY, "--inits", inits, "--out",
                                           "{tmp}/out"]))
    c.append(Case("mode in the name and as an option",
                  [*run, "--init", "xavier(mode=fan_in)", "--mode", "fan_in"]))
    cnn = ["run", "--init", "xavier", "--model", "cnn", "--dataset", "digits", "--epochs", "1",
           "--seeds", "1", "-q", "--out", "{tmp}/out"]
    c.append(Case("activation with cnn", [*cnn, "--activation", "tanh"]))
    c.append(Case("hidden with cnn", [*cnn, "--hidden", "16"]))
    for name in ("curves.csv", "summary.csv", "spec.json"):
        c.append(Case(f"export onto the run's {name}",
                      ["export", "{tmp}/grid", "--out", f"{{tmp}}/grid/{name}"], setup=_grid,
                      out="grid"))
    c.append(Case("plot onto another run's curves.png",
                  ["plot", "{tmp}/grid", "--out", "{tmp}/grid2/curves.png"],
                  setup=_grid_edited(lambda g: shutil.copytree(g, g.parent / "grid2")),
                  out="grid2"))
    for command, extra in [("run", ["--init", "xavier", "--epochs", "1"]),
                           ("compare", ["--inits", "xavier,normal", "--epochs", "1"]),
                           ("probe", ["--inits", "xavier"])]:
        c.append(Case(f"{command} integer logits",
                      [command, "--model", "{tmp}/intnet.py:make", "--dataset", "digits",
                       "--seeds", "1", *extra, "--out", "{tmp}/out"],
                      setup=_write("intnet.py", _INT_LOGITS)))
    c.append(Case("model prints with --json",
                  ["run", "--model", "{tmp}/printing.py:make", "--init", "xavier", "--dataset",
                   "digits", "--epochs", "1", "--seeds", "1", "--json", "--out", "{tmp}/out"],
                  (0,), setup=_write("printing.py", _PRINTING), json_stdout=True))
    c.append(Case("plan effect 1e-9", ["plan", "{tmp}/grid", "--effect", "1e-9"], setup=_grid,
                  out="grid"))
    c.append(Case("plan all diverged", ["plan", "{tmp}/grid", "--effect", "1"],
                  setup=_grid_edited(_all_diverged), out="grid"))
    c.append(Case("max-seeds 100001", ["compare", "--inits", "xavier,normal", *TINY[:-3],
                                       "--seeds", "auto", "--precision", "0.5", "--max-seeds",
                                       "100001", "--out", "{tmp}/out"]))
    c.append(Case("cell cache full", ["run", "--init", "he_normal", *TINY, "--out", "{tmp}/out"],
                  patch=lambda: mock.patch("initbench.cellcache.write_atomic", side_effect=OSError(
                      errno.ENOSPC, os.strerror(errno.ENOSPC)))))
    c.append(Case("curves.csv with a BOM", ["export", "{tmp}/grid", "--format", "csv"], (0,),
                  setup=_grid_edited(_with_bom), out=None))
    c.append(Case("report of other data", ["report", "{tmp}/grid", "{tmp}/grid2"],
                  setup=_grid_edited(_other_data_copy), out=None))
    c.append(Case("report identical overlap", ["report", "{tmp}/grid", "{tmp}/grid2"], (0,),
                  setup=_grid_edited(lambda g: shutil.copytree(g, g.parent / "grid2")),
                  out=None))
    return c


def _tfds_file(tmp: Path) -> None:
    _idx(tmp)
    (tmp / "tfdsfile").write_text("x")


def _damage_cell(damage: bytes | None) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        cache = Path(os.environ["INITBENCH_CACHE"])
        for cell in cache.glob("*/glorot_uniform-seed1.npz"):
            content = cell.read_bytes()
            cell.write_bytes(content[: len(content) // 3] if damage is None else damage)
    return setup


@contextlib.contextmanager
def _held_lock():
    """Another process holds {tmp}/out's lock (a child that holds it until told to stop)."""
    import subprocess

    out = Path(os.environ["HOSTILE_TMP"]) / "out"
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom initbench import safeio\n"
         f"with safeio.folder_lock({str(out)!r}):\n    print('locked', flush=True)\n"
         "    sys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    child.stdout.readline()
    try:
        yield
    finally:
        child.stdin.close()
        child.wait()


def snapshot(folder: Path) -> dict | None:
    if not folder.is_dir():
        return None
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def check(case: Case, root: Path, warm_cache: Path) -> list[str]:
    """Run one case; return what is wrong with its outcome."""
    from initbench.cli import app

    tmp = Path(tempfile.mkdtemp(dir=root))
    cache = tmp / "cache"
    shutil.copytree(warm_cache, cache)
    env = {"INITBENCH_CACHE": str(cache), "TFDS_DATA_DIR": str(tmp / "tfds"),
           "HOSTILE_TMP": str(tmp)}
    env.update({k: v.replace("{tmp}", str(tmp)) for k, v in case.env.items()})
    args = case.args(tmp) if callable(case.args) else case.args
    args = [str(a).replace("{tmp}", str(tmp)) for a in args]
    problems = []
    cwd = os.getcwd()
    try:
        os.chdir(tmp)  # `--out .` and default folders land here, never in the project
        with mock.patch.dict(os.environ, env):
            if case.setup is not None:
                case.setup(tmp)
            out = tmp / case.out if case.out else None
            before = snapshot(out) if out else None
            parent_before = {p.name for p in (out.parent if out else tmp).iterdir()} \
                if (out.parent if out else tmp).is_dir() else set()
            with case.patch() if case.patch else contextlib.nullcontext():
                result = CliRunner().invoke(app, args)
    except Exception:  # the harness itself
        return [f"setup failed: {traceback.format_exc().splitlines()[-1]}"]
    finally:
        os.chdir(cwd)
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        tb = "".join(traceback.format_exception(result.exception)).strip().splitlines()
        problems.append(f"uncaught {type(result.exception).__name__}: {tb[-1][:160]}")
    if "Traceback" in output:
        problems.append("traceback printed")
    if case.expect is not None and case.expect not in output:
        problems.append(f"output lacks {case.expect!r}")
    if case.json_stdout:
        import json

        try:
            json.loads(result.stdout)
        except ValueError:
            problems.append(f"stdout is not one JSON document: {result.stdout[:120]!r}")
    if result.exit_code not in case.codes:
        problems.append(f"exit {result.exit_code}, expected {case.codes}: "
                        f"{output.strip().splitlines()[-1][:160] if output.strip() else ''}")
    if result.exit_code not in (0,) and "help" not in case.name and case.name != "no command":
        # A write failing after training follows the printed tables (stdout): the one
        # error line is then the whole of stderr.
        after_results = "verdict" in result.stdout
        text = result.stderr if after_results else output
        lines = [x for x in text.strip().splitlines() if x.strip()]
        errors = [x for x in lines if x.startswith("error:")]
        if len(errors) != 1 or len(lines) != 1:
            problems.append(f"{len(lines)} lines, {len(errors)} error lines: {output[:200]!r}")
        elif errors[0].strip() == "error:":
            problems.append("bare error line")
    if out is not None:
        after = snapshot(out)
        if result.exit_code != 0 and after != before and not (before is None and after == {}):
            problems.append(f"{case.out} changed although the command failed")
        if result.exit_code == 0 and after is not None and not set(after) >= RUN_FILES:
            problems.append(f"{case.out} is not a whole run: {sorted(after)}")
    scan = out.parent if out is not None else tmp
    if scan.is_dir():
        new = {p.name for p in scan.iterdir()} - parent_before
        stray = [n for n in new if n.startswith(".") and any(
            s in n for s in (".tmp-", ".old-", ".build-", ".probe-", ".lock"))]
        if stray:
            problems.append(f"left behind: {stray}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="only cases whose name contains this")
    parser.add_argument("-v", action="store_true", help="print every case")
    options = parser.parse_args()
    from initbench import data

    data.network_available = lambda *args, **kwargs: False  # offline, like the tests
    root = Path(tempfile.mkdtemp(prefix="initbench-hostile-"))
    try:
        warm = root / "warm-cache"
        with mock.patch.dict(os.environ, {"INITBENCH_CACHE": str(warm)}):
            _grid(root, "warm", seeds="2")
            _grid(root, "warm-lr", seeds="1", inits="xavier,normal")
        selected = [case for case in cases() if options.k in case.name]
        failures = 0
        for number, case in enumerate(selected, start=1):
            problems = check(case, root, warm)
            failures += bool(problems)
            if problems or options.v:
                print(f"[{number:3d}] {'FAIL' if problems else 'ok  '} {case.name}"
                      + "".join(f"\n        {p}" for p in problems), flush=True)
        print(f"{len(selected)} cases, {failures} with problems.")
        return 1 if failures else 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
