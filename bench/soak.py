"""Soak the end of a run: many fresh processes, each training one tiny cell and then doing
everything a run does after training (summary, figure, files), while the machine is loaded.

    PYTHONPATH=. python bench/soak.py [--runs 250] [--parallel 4] [--burners 2] [--timeout 180]

Why: issue 23 found a hang once in about 230 runs: a background thread importing (a
dlopen) while the main thread imported too deadlocked the loader lock against the GIL, at
0% CPU, Ctrl-C powerless. Since then a run imports in the main thread only. Each process
here checks that under load, in two ways:

- a hang: `faulthandler` dumps every thread's stack and ends the process after `--timeout`
  seconds (a deadlocked process cannot end itself otherwise); the stacks are printed;
- the cause, deterministically: an audit hook records every `import` and `ctypes.dlopen`
  made off the main thread, and any is a failure, hang or not.

Load: `--burners` processes spin on the CPU, and inside each run a thread churns through
allocations (garbage collections, so JAX's GC callback runs) while the main thread works.
Exits 1 if any process hung, failed, wrote no figure or imported off the main thread.
`tests/test_soak.py` runs a short version (a few processes) in the suite.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--dataset", "digits", "--epochs", "1", "--hidden", "8", "--seeds", "1", "-q"]

# The child: a hang watchdog, the off-main-thread import audit, an allocation-churning
# thread (which imports nothing once started), then the CLI's own entry point.
CHILD = """
import faulthandler, sys, threading, time
faulthandler.dump_traceback_later({timeout}, exit=True)
off_main = []

def audit(event, args):
    if event in ("import", "ctypes.dlopen") and threading.current_thread() is not threading.main_thread():
        off_main.append(f"{{threading.current_thread().name}}: {{args[0]}}")

sys.addaudithook(audit)
stop = threading.Event()

def churn():  # a few garbage collections a cycle, a few percent of the GIL
    while not stop.is_set():
        junk = [(i, [i]) for i in range(2000)]
        del junk
        time.sleep(0.005)

threading.Thread(target=churn, name="soak-churn", daemon=True).start()
from initbench.cli import run
code = run()
stop.set()
print("OFF-MAIN IMPORTS:", sorted(set(off_main)), file=sys.stderr)
sys.stderr.flush()
sys.exit(code if code else (3 if off_main else 0))
"""


def run_once(k: int, work: Path, timeout: float) -> str | None:
    """Run child `k` (its own output folder, the shared cell cache in `work`); None if it
    ended well, else what went wrong (with the stacks of a hang)."""
    out = work / f"run{k}"
    env = {**os.environ, "INITBENCH_CACHE": str(work / "cache"), "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD.format(timeout=timeout), "run", "--init", "xavier",
             *TINY, "--out", str(out)],
            capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout + 60)
    except subprocess.TimeoutExpired:  # not even the watchdog ran
        return f"run {k}: no end after {timeout + 60:.0f} s, watchdog silent"
    seconds = time.monotonic() - started
    if "Timeout (" in done.stderr or "most recent call first" in done.stderr:
        return f"run {k}: HUNG for {timeout:.0f} s; stacks:\n{done.stderr[-6000:]}"
    if done.returncode != 0:
        return f"run {k}: exit {done.returncode} after {seconds:.1f} s:\n{done.stderr[-3000:]}"
    if "OFF-MAIN IMPORTS: []" not in done.stderr:
        return f"run {k}: imported off the main thread: {done.stderr[-1000:]}"
    if not (out / "curves.png").is_file() or not (out / "summary.csv").is_file():
        return f"run {k}: no whole run folder at {out}"
    return None


def soak(runs: int, parallel: int, burners: int, timeout: float,
         work: Path | None = None) -> list[str]:
    """`runs` child processes, `parallel` at a time, beside `burners` CPU-spinning
    processes; the list of what went wrong (empty: every run ended, whole, in time)."""
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(work or scratch)
        spinning = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                    for _ in range(burners)]
        try:
            with ThreadPoolExecutor(parallel) as pool:
                outcomes = list(pool.map(lambda k: run_once(k, work, timeout), range(runs)))
        finally:
            for process in spinning:
                process.kill()
                process.wait()
    return [outcome for outcome in outcomes if outcome is not None]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=250)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--burners", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="seconds after which a process counts as hung")
    args = parser.parse_args()
    started = time.monotonic()
    problems = soak(args.runs, args.parallel, args.burners, args.timeout)
    for problem in problems:
        print(problem)
    print(f"{args.runs} runs, {len(problems)} problems, {time.monotonic() - started:.0f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
