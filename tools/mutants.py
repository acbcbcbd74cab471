"""A curated mutation check: does the test suite notice plausible one-line bugs?

Each mutant is (id, file, exact source snippet, replacement, tests that should notice,
what it breaks). The runner copies the package and the tests to a temporary folder once,
then for each mutant writes the mutated file into that copy (never into this clone), runs
`pytest -x` on the named tests with a timeout, and restores the file. A mutant is *killed*
when the tests fail (or time out), *survived* when they pass. Mutants in `EQUIVALENT`
cannot change any observable number; they are run too, and reported apart.

A snippet that no longer matches its file exactly once stops the runner before anything
runs (after a refactor, re-anchor the mutant rather than let it skip silently).

    python tools/mutants.py                  # every mutant; table on stdout
    python tools/mutants.py --only T1 SU1    # some of them
    python tools/mutants.py --list           # ids, files and what each breaks
    python tools/mutants.py --csv results/mutants.csv
    python tools/mutants.py --blind tools/blind/20.json  # see tools/blind/README.md
                                             # mutants written by someone who has not read
                                             # the tests: a JSON list of {id, file, old, new,
                                             # breaks[, tests]}; --tests is the default set

Exit status: 0 when every non-equivalent mutant was killed, 1 otherwise, 2 on a stale
snippet or a suite that fails without any mutation.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("initbench", "tests", "bench", "tools", "pyproject.toml", "results", "README.md", "docs",
          "examples", "Makefile")  # tests read them


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]
    breaks: str


TRAIN, SPEC, RESULTS = "tests/test_train.py", "tests/test_spec.py", "tests/test_results.py"
STATS, INITS, PROBE = "tests/test_stats.py", "tests/test_initializers.py", "tests/test_probe.py"
CLI, REPORT = "tests/test_cli.py", "tests/test_report.py"
FAULTS, DSEEDS = "tests/test_faults.py", "tests/test_data_seeds.py"
STATS11, CLI11 = "tests/test_paired_tests_and_robust_stats.py", "tests/test_seeds_auto_plan_and_pairs.py"
INTERVALS = "tests/test_intervals.py"

MUTANTS = [
    # ---- spec.py: the cache key and validation
    Mutant("S1", "initbench/spec.py", '"lr", "optimizer", "hidden"', '"lr", "hidden"', (SPEC,),
           "optimizer dropped from the cache key"),
    Mutant("S2", "initbench/spec.py", '"bias_init", "gain", "mode",', '"bias_init", "mode",',
           (SPEC,), "gain dropped from the cache key"),
    Mutant("S3", "initbench/spec.py", '"gain", "mode", "lsuv_tol",', '"gain", "lsuv_tol",',
           (SPEC,), "mode dropped from the cache key"),
    Mutant("S4", "initbench/spec.py", '"mode", "lsuv_tol", "lsuv_max_iter",',
           '"mode", "lsuv_max_iter",', (SPEC,), "lsuv_tol dropped from the cache key"),
    Mutant("S5", "initbench/spec.py", '"lsuv_tol", "lsuv_max_iter", "track_layers",',
           '"lsuv_tol", "track_layers",', (SPEC,), "lsuv_max_iter dropped from the cache key"),
    Mutant("S6", "initbench/spec.py", "kwargs = {k: tuple(v) if isinstance(v, list) else v",
           "kwargs = {k: v", (SPEC, REPORT), "spec.json lists not turned back into tuples"),
    Mutant("S7", "initbench/spec.py", "or spec.gain <= 0)", "or spec.gain < 0)", (SPEC,),
           "--gain 0 accepted"),
    Mutant("S8", "initbench/spec.py", "if self.mode is not None:", "if self.mode is None:",
           (TRAIN,), "--mode never passed to the initializers"),
    Mutant("S9", "initbench/spec.py", "or not 0 < spec.lsuv_tol < 1:", "or not 0 < spec.lsuv_tol:",
           (SPEC,), "--lsuv-tol 1 or more accepted"),
    # ---- stats.py: intervals, verdicts, divergence
    Mutant("ST1", "initbench/stats.py", "tail = 100.0 * (1.0 - level) / 2.0",
           "tail = 100.0 * (1.0 - level)", (STATS,), "bootstrap CI at the wrong level"),
    Mutant("ST2", "initbench/stats.py", "np.std(x, ddof=1) / np.sqrt(n))",
           "np.std(x, ddof=0) / np.sqrt(n))", (STATS,), "t interval with the biased std"),
    Mutant("ST3", "initbench/stats.py", "0.5 * np.sum(signed == 0)", "1.0 * np.sum(signed == 0)",
           (STATS,), "ties count as wins in P(better)"),
    Mutant("ST4", "initbench/stats.py",
           "    if n < MIN_PAIRED_SEEDS:\n        return Paired(n, mean_diff,",
           "    if n < 2:\n        return Paired(n, mean_diff,", (STATS,),
           "a (loss) verdict from 2 seeds"),
    Mutant("ST11", "initbench/stats.py",
           "    if n < MIN_PAIRED_SEEDS:\n        return VERDICT_TOO_FEW\n    if equivalent:",
           "    if n < 2:\n        return VERDICT_TOO_FEW\n    if equivalent:", (STATS11,),
           "an (accuracy, Holm) verdict from 2 seeds"),
    Mutant("ST12", "initbench/stats.py",
           "scaled = np.minimum(np.maximum(m - rank, 1) * sorted_p, 1.0)",
           "scaled = np.minimum(sorted_p, 1.0)", (STATS11,), "Holm corrects nothing"),
    Mutant("ST13", "initbench/stats.py",
           "adjusted_sorted = np.maximum.accumulate(scaled, axis=-1)",
           "adjusted_sorted = scaled", (STATS11,),
           "Holm without its step-down (adjusted p-values out of order)"),
    Mutant("ST5", "initbench/stats.py",
           "verdict = VERDICT_BETTER if higher_is_better else VERDICT_WORSE",
           "verdict = VERDICT_BETTER", (STATS, RESULTS), "lower-is-better verdict inverted"),
    Mutant("ST6", "initbench/stats.py", "np.where(bad.any(axis=-1), np.argmax(bad, axis=-1), -1)",
           "np.where(bad.any(axis=-1), np.argmax(bad, axis=-1) + 1, -1)", (STATS, TRAIN),
           "divergence found one epoch late"),
    Mutant("ST7", "initbench/stats.py", "(epochs >= first[..., None])", "(epochs > first[..., None])",
           (STATS, TRAIN), "the first diverged epoch left unmasked"),
    Mutant("ST8", "initbench/stats.py", "hit = curves >= target", "hit = curves > target",
           (STATS,), "reaching the target exactly does not count"),
    Mutant("ST9", "initbench/stats.py", "sem=std / float(np.sqrt(n))", "sem=std / float(n)",
           (STATS,), "standard error divided by n"),
    Mutant("ST10", "initbench/stats.py", "    x = x[finite]\n", "    x = np.where(finite, x, 0.0)\n",
           (STATS, TRAIN), "diverged seeds count as 0 in the summary"),
    # ---- summary.py: rows, ranking, verdict directions
    Mutant("SU1", "initbench/summary.py", "higher_is_better=False, level=level)",
           "higher_is_better=True, level=level)",
           (RESULTS, REPORT), "loss verdict computed with the wrong direction"),
    Mutant("SU2", "initbench/summary.py", "verdict=stats.interval_verdict(low, high, n, margin),",
           "verdict=stats.interval_verdict(-high, -low, n, margin),", (RESULTS, INTERVALS),
           "accuracy verdict computed with the wrong direction"),
    Mutant("SU3", "initbench/summary.py", "rows.sort(key=lambda r: -r.accuracy.mean if",
           "rows.sort(key=lambda r: r.accuracy.mean if", (RESULTS, CLI),
           "ranking reversed (worst first)"),
    Mutant("SU4", "initbench/summary_rows.py", "        return self.accuracy.n_diverged",
           "        return 0",
           (TRAIN,), "diverged cells not counted"),
    Mutant("SU5", "initbench/summary.py", "baseline = baseline or inits[0]",
           "baseline = baseline or inits[-1]", (RESULTS, REPORT), "default baseline is the last init"),
    Mutant("SU6", "initbench/summary.py", "compare_paired(final_acc[i], final_acc[base],",
           "compare_paired(final_acc[base], final_acc[i],", (RESULTS, REPORT),
           "paired difference taken the wrong way round"),
    Mutant("SU7", "initbench/summary.py", "slot_acc = acc[:, :, -1]", "slot_acc = acc[:, :, -2]",
           (RESULTS, TRAIN, REPORT), "summary of the second-to-last epoch"),
    Mutant("SU8", "initbench/summary_rows.py", "if flip < 0 and verdict in",
           "if False and verdict in", (RESULTS,),
           "--pairs all: a verdict of (baseline, init) not turned round for init's row"),
    Mutant("SU9", "initbench/stats.py",
           "divisor = np.where(rejected, m - rank, m - failed).astype(float)",
           "divisor = np.ones_like(m - rank).astype(float)", (RESULTS, INTERVALS),
           "verdicts and intervals at the raw 95%, not at Holm's step"),
    Mutant("SU12", "initbench/summary.py", "return max(level, 1.0 - stats.ALPHA / num_looks(result))",
           "return level", (INTERVALS,),
           "a merge of runs with different seeds keeps 95%: looking, then adding seeds, unpaid"),
    Mutant("ST14", "initbench/stats.py",
           "inside = ((b_low > -margin) & (b_high < margin)) | ((low > -margin) & (high < margin))",
           "inside = (b_low > -margin) & (b_high < margin)", (INTERVALS,),
           "a Holm-step interval inside the margin shown beside a verdict other than equivalent"),
    Mutant("PW1", "initbench/power.py", "    bad = np.isnan(cdf)\n", "    bad = np.zeros(cdf.shape, bool)\n",
           (INTERVALS,), "nctdtr's NaN tails read as numbers: mde_80 at 2 seeds 5.36 sd, not 11.55"),
    Mutant("SU10", "initbench/summary.py", "    if k == 1:\n        return values\n    grouped",
           "    if True:\n        return values\n    grouped", (DSEEDS,),
           "--data-seeds: every (seed, data order) slot counted as an independent seed"),
    Mutant("SU11", "initbench/summary.py",
           "np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)\n\n\ndef variance_shares",
           "np.where(counts == k, sums / np.maximum(counts, 1), np.nan)\n\n\ndef variance_shares", (DSEEDS,),
           "--data-seeds: a weight seed with one diverged data order dropped whole"),
    # ---- safeio.py, runfolder.py, cellcache.py, results.py: atomic files, curves, cache
    Mutant("R1", "initbench/safeio.py",
           'fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:200]}.", suffix=".tmp")',
           "fd, tmp = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666), str(path)",
           (RESULTS,), "write_atomic writes in place, without temporary file and rename"),
    Mutant("R2", "initbench/safeio.py", "            os.unlink(tmp)\n", "            pass\n",
           (RESULTS,), "temporary file left behind after a failed write"),
    Mutant("R3", "initbench/safeio.py", "tempfile.mkstemp(dir=path.parent,",
           "tempfile.mkstemp(dir=None,", (RESULTS,),
           "temporary file on another file system (rename not atomic)"),
    Mutant("R4", "initbench/safeio.py",
           'staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=_sibling(folder, "tmp-")))',
           "staging = folder; folder.mkdir(exist_ok=True)", (FAULTS,),
           "a run folder assembled in place, not beside it and renamed"),
    Mutant("R5", "initbench/runfolder.py", '"diverged": int(diverged[i, s, epoch])}', '"diverged": 0}',
           (TRAIN,), "curves.csv never marks diverged rows"),
    Mutant("R6", "initbench/runfolder.py", "else repr(float(value))", 'else f"{float(value):.6g}"',
           (REPORT,), "CSV numbers rounded to 6 digits"),
    Mutant("R7", "initbench/runfolder.py", "    if len(rows) < expected:\n", "    if False:\n",
           (REPORT,), "a curves.csv short of whole rows is read as whole"),
    Mutant("R8", "initbench/cellcache.py", 'name = f"{canonical_init}-seed{seed}" +',
           'name = f"{canonical_init}" +', (CLI, REPORT), "cached cells shared between seeds"),
    Mutant("R10", "initbench/cellcache.py", '+ (f"-data{data_seed}" if data_seed else "")',
           '+ ""', (DSEEDS,), "cached cells shared between data orders of a seed"),
    Mutant("R11", "initbench/cellcache.py",
           '"training_key": _cell_key(spec), "data": data.fingerprint(dataset),',
           '"training_key": _cell_key(spec),', (FAULTS,),
           "cache key without the data fingerprint (other data under one name served cached)"),
    Mutant("R9", "initbench/results.py",
           "return np.logical_or.reduce([~np.isfinite(self.metrics[name]) for name in LOSSES])",
           'return ~np.isfinite(self.metrics["train_loss"])', (TRAIN, RESULTS),
           "diverged marked from the train loss only"),
    # ---- train.py / grid.py / starts.py / model.py: the paired design and the trainer
    Mutant("T1", "initbench/train.py",
           "return jnp.stack([model_lib.data_order_key(cell[1], ",
           'return jnp.stack([model_lib.data_order_key(cell[1] + (cell[0] in ("lsuv", "normal")), ',
           (TRAIN,),
           "minibatch order depends on the initializer for some initializers"),
    Mutant("T2", "initbench/train.py",
           "jax.random.permutation(jax.random.fold_in(state.data_key, epoch), num_train)",
           "jax.random.permutation(state.data_key, num_train)", (TRAIN,),
           "the same minibatch order every epoch"),
    Mutant("T3", "initbench/train.py", "batches = order[: num_steps * spec.batch_size]",
           "batches = order[num_train - num_steps * spec.batch_size:]", (TRAIN,),
           "minibatches from the end of the epoch's order"),
    Mutant("T4", "initbench/train.py", '"train_loss": losses.mean()', '"train_loss": losses[-1]',
           (TRAIN,), "epoch train loss is the last step's"),
    Mutant("T5", "initbench/train.py", "return loss_sum / num, num_correct / num",
           "return loss_sum / chunks[2].size, num_correct / num", (TRAIN,),
           "evaluation loss averaged over padding too"),
    Mutant("T6", "initbench/train.py", "jnp.sum(correct * mask)", "jnp.sum(correct)", (TRAIN,),
           "padded examples counted as correct or wrong"),
    Mutant("T7", "initbench/grid.py",
           "metrics = {name: stats.mask_diverged(values, first) for name, values in metrics.items()}",
           "metrics = dict(metrics)", (TRAIN,),
           "diverged cells never masked (accuracy 0.1 counts in the statistics)"),
    Mutant("T8", "initbench/optimizers.py",
           '"momentum": Optimizer("sgd", "SGD with momentum 0.9", MappingProxyType({"momentum": 0.9})),',
           '"momentum": Optimizer("sgd", "SGD with momentum 0.9"),', (TRAIN,),
           "momentum optimizer without momentum"),
    Mutant("T9", "initbench/lsuv.py", "batch = lsuv_batch(data.x_train)",
           "batch = data.x_train[:500]", (TRAIN,),
           "LSUV rescaled on another batch than the documented one"),
    Mutant("T10", "initbench/starts.py", "        index[name] += 1\n", "        index[name] += 0\n",
           (TRAIN,), "every seed of an initializer starts from the first seed's draw"),
    Mutant("M1", "initbench/model.py",
           "kernel_init=initializers.get(init_name, **kernel_params(spec, init_name)),",
           "kernel_init=initializers.get(init_name),", (TRAIN, CLI),
           "--gain/--mode ignored by the model"),
    Mutant("M2", "initbench/model.py", "INIT_STREAM), name_id)", "INIT_STREAM), 0)", (TRAIN,),
           "every initializer draws from the same key"),
    Mutant("M3", "initbench/model.py", "    if data_seed == 0:\n        return data_key(seed)",
           "    if True:\n        return data_key(seed)", (DSEEDS,),
           "--data-seeds: every data order of a seed is the same order"),
    # ---- initializers.py
    Mutant("I1", "initbench/initializers.py", "variance_scaling(base * gain**2,",
           "variance_scaling(base * gain,", (INITS,), "gain scales the variance, not the std"),
    Mutant("I2", "initbench/initializers.py", "return initializers.orthogonal(gain)",
           "return initializers.orthogonal()", (INITS,), "orthogonal ignores its gain"),
    Mutant("I3", "initbench/initializers.py", '"fan_avg": (fan_in + fan_out) / 2}',
           '"fan_avg": fan_in + fan_out}', (INITS,), "fan_avg is the sum"),
    Mutant("I4", "initbench/initializers.py", "return gain * jnp.eye(shape[0], shape[1], dtype=dtype)",
           "return jnp.eye(shape[0], shape[1], dtype=dtype)", (INITS,), "identity ignores its gain"),
    Mutant("I5", "initbench/initializers.py", "key = _ALIASES.get(key, key)", "key = key", (INITS,),
           "aliases not resolved"),
    # ---- lsuv.py
    Mutant("L1", "initbench/lsuv.py", "k = k / jnp.sqrt(v)", "k = k / v", (PROBE,),
           "LSUV divides by the variance, not the std"),
    Mutant("L2", "initbench/lsuv.py", "h = act(out) if i < num_layers - 1 else out", "h = out",
           (PROBE,), "LSUV skips the activations"),
    Mutant("L3", "initbench/lsuv.py", "spec.lsuv_tol, spec.lsuv_max_iter)", "spec.lsuv_tol, 20)",
           (PROBE,), "--lsuv-max-iter ignored"),
    Mutant("L4", "initbench/lsuv.py", "return (jnp.abs(v - 1.0) >= tol) & (count < max_iter)",
           "return (count < max_iter)", (PROBE,), "LSUV ignores its tolerance"),
    Mutant("L5", "initbench/lsuv.py", "BATCH_SIZE = 1000", "BATCH_SIZE = 500", (TRAIN,),
           "LSUV batch other than the documented first 1,000 training examples"),
    Mutant("L6", "initbench/lsuv.py", "(jnp.abs(v - 1.0) >= tol)", "(jnp.abs(v - 1.0) > tol)",
           (PROBE,), "LSUV tolerance boundary"),
    Mutant("C1", "initbench/cli.py", "            stream.flush()\n", "            pass\n",
           (CLI + "::test_the_console_script_exits_with_the_commands_code_and_all_its_output",),
           "the console script ends the process without flushing stdout"),
]

EQUIVALENT = {
    "R9": "train_grid masks every metric from a cell's first bad epoch, so train_loss is NaN "
          "exactly where test_loss is in every result initbench writes or reads back",
    "S7": "defence in depth: the float32 range check that follows (gain at least "
          "sqrt(float32 tiny)) refuses gain 0 and every negative gain with one InitbenchError "
          "naming --gain",
    "R7": "defence in depth: the later check that every (init, seed, epoch) row was seen "
          "refuses the same file with the same one-line 'truncated ... rows are missing' error",
    "L6": "|Var - 1| equal to the tolerance to the last float bit decides one extra pass at "
          "most; no test set or tolerance in use hits it",
}


def load_blind(path: Path, default_tests: tuple[str, ...]) -> list[Mutant]:
    """Blind mutants from a JSON list; those whose snippet does not occur exactly once are
    reported and dropped, since nobody re-anchors another person's mutants by guessing."""
    import json

    mutants = []
    for entry in json.loads(path.read_text()):
        m = Mutant(entry["id"], entry["file"], entry["old"], entry["new"],
                   tuple(entry.get("tests") or default_tests), entry["breaks"])
        problem = check_snippets([m])
        if problem:
            print("skipped, stale:", *problem, file=sys.stderr)
            continue
        if not m.tests:
            raise SystemExit(f"{m.id}: no tests named and no --tests given")
        mutants.append(m)
    return mutants


def check_snippets(mutants: list[Mutant]) -> list[str]:
    """Messages for every mutant whose snippet does not occur exactly once in its file."""
    problems = []
    for m in mutants:
        count = (ROOT / m.file).read_text().count(m.old)
        if count != 1:
            problems.append(f"{m.id}: snippet found {count} times in {m.file}: {m.old!r}")
    return problems


def run_tests(copy: Path, tests: tuple[str, ...], env: dict, timeout: float,
              show_failure: bool = False) -> tuple[str, float, str]:
    """('passed' | 'failed' | 'timeout', seconds, the first failing test) of `pytest -x` on
    `tests` in `copy`; `show_failure` prints pytest's output when they fail."""
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-rfE", "-p",
                               "no:cacheprovider", *tests], cwd=copy, env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - start, ""
    status = "passed" if done.returncode == 0 else "failed"
    if done.returncode not in (0, 1) or (show_failure and done.returncode):
        # 1 = tests failed: expected of a mutant; anything else (or a baseline) is worth seeing
        print(done.stdout[-2000:], done.stderr[-2000:], file=sys.stderr)
    failed = [line.split(" - ")[0].split(" ", 1)[1] for line in done.stdout.splitlines()
              if line.startswith(("FAILED ", "ERROR "))]
    return status, time.perf_counter() - start, failed[0] if failed else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="ID", help="run only these mutants")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per mutant")
    parser.add_argument("--csv", type=Path, help="also write the results to this CSV file")
    parser.add_argument("--skip-baseline", action="store_true",
                        help="do not first check that the named tests pass unmutated")
    parser.add_argument("--blind", type=Path, metavar="FILE.json",
                        help="run these mutants instead of the curated list (not re-anchored: "
                             "a stale snippet is reported and skipped)")
    parser.add_argument("--tests", nargs="+", default=[],
                        help="with --blind: the tests for mutants that name none")
    args = parser.parse_args(argv)
    mutants = MUTANTS
    if args.blind:
        mutants = load_blind(args.blind, tuple(args.tests))
    if args.only:
        unknown = set(args.only) - {m.id for m in mutants}
        if unknown:
            parser.error(f"unknown mutant ids: {', '.join(sorted(unknown))}")
        mutants = [m for m in mutants if m.id in args.only]
    if args.list:
        for m in mutants:
            note = "  [equivalent]" if m.id in EQUIVALENT else ""
            print(f"{m.id:5} {m.file:28} {m.breaks}{note}")
        return 0
    problems = check_snippets(MUTANTS if not args.blind else [])
    if problems:
        print("stale mutants (re-anchor them to the current source):", *problems, sep="\n  ",
              file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="initbench-mutants-") as tmp:
        copy, shared = Path(tmp, "copy"), Path(tmp, "shared")
        copy.mkdir()
        shared.mkdir()
        for name in COPIED:
            src = ROOT / name
            if src.is_dir():
                shutil.copytree(src, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, copy / name)
        # some tests ask git what it ignores: the copy is a repository of its own, not a clone
        shutil.copy2(ROOT / ".gitignore", copy / ".gitignore")
        subprocess.run(["git", "init", "-q"], cwd=copy, check=True)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XLA_FLAGS")}
        # the copy, not this clone (nor an installed initbench), is what the tests import;
        # one temporary cache folder for every run, so unchanged programs compile once
        env.update(PYTHONPATH=str(copy), INITBENCH_TEST_TMP=str(shared), PYTHONDONTWRITEBYTECODE="1")
        where = subprocess.run([sys.executable, "-c", "import initbench; print(initbench.__file__)"],
                               cwd=copy, env=env, capture_output=True, text=True).stdout.strip()
        if not where.startswith(str(copy)):
            print(f"the copy's tests would import {where!r}, not the copy", file=sys.stderr)
            return 2
        if not args.skip_baseline:
            tests = tuple(sorted({t for m in mutants for t in m.tests}))
            print(f"baseline: {' '.join(tests)} (unmutated) ...", flush=True)
            status, seconds, _ = run_tests(copy, tests, env, args.timeout * 2, show_failure=True)
            print(f"baseline {status} in {seconds:.0f} s", flush=True)
            if status != "passed":
                print("the named tests fail without any mutation; fix that first", file=sys.stderr)
                return 2
        rows = []
        for m in mutants:
            path = copy / m.file
            original = path.read_text()
            path.write_text(original.replace(m.old, m.new, 1))
            try:
                status, seconds, killed_by = run_tests(copy, m.tests, env, args.timeout)
            finally:
                path.write_text(original)
            outcome = "survived" if status == "passed" else "killed"
            if m.id in EQUIVALENT and not args.blind and outcome == "survived":
                outcome = "equivalent"
            rows.append({"id": m.id, "file": m.file, "outcome": outcome, "tests_status": status,
                         "seconds": round(seconds, 1), "killed_by": killed_by,
                         "tests": " ".join(m.tests), "breaks": m.breaks})
            print(f"{m.id:5} {outcome:10} {seconds:6.1f} s  {m.file:26} {m.breaks}"
                  f"{'  <- ' + killed_by if killed_by else ''}", flush=True)

    killed = sum(r["outcome"] == "killed" for r in rows)
    equivalent = sum(r["outcome"] == "equivalent" for r in rows)
    survivors = [r for r in rows if r["outcome"] == "survived"]
    countable = len(rows) - equivalent
    rate = killed / countable if countable else float("nan")
    print(f"\nkilled {killed} of {countable} non-equivalent mutants ({100 * rate:.1f}%); "
          f"{equivalent} equivalent; {len(rows)} run")
    for r in rows:
        if r["outcome"] == "equivalent":
            print(f"  equivalent {r['id']}: {EQUIVALENT[r['id']]}")
    for r in survivors:
        print(f"  SURVIVED {r['id']} ({r['file']}): {r['breaks']}")
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
