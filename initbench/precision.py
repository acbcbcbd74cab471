"""Low precision (`--dtype bfloat16`): draws made in float32 and cast, and what the cast
keeps of a draw (realised std, mean, the share of values at a truncation bound).

Drawing directly in bfloat16 is what users report going wrong (a truncated normal asked for
std 0.01 came out 0.127; orthogonal initializers that crash: QR has no bfloat16 kernel on
some backends). Here every initializer draws in float32, so the float32 draw is the one the
registry documents, and the parameters are then rounded to the run's dtype
(`cast_params`); training then computes in that dtype (inputs cast; logits and loss back in
float32, `networks.make_apply`).
"""

from __future__ import annotations

import numpy as np

from initbench.initializers import TRUNCATED_UNIT_STD

DTYPES = ("float32", "bfloat16")


def jax_dtype(name: str):
    """The jnp dtype of a `--dtype` name."""
    import jax.numpy as jnp

    return {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[name]


def cast_params(params, dtype: str):
    """Floating leaves of `params` (NumPy or JAX) cast to `dtype`; float32 returns `params`."""
    if dtype == "float32":
        return params
    import jax
    import jax.numpy as jnp

    target = jax_dtype(dtype)

    def cast(a):
        return a.astype(target) if jnp.issubdtype(a.dtype, jnp.floating) else a

    return jax.tree.map(cast, params)


def draw(init_fn, key, shape, dtype: str):
    """`init_fn` drawn in float32, then cast to `dtype` (the path every run takes)."""
    import jax.numpy as jnp

    return init_fn(key, shape, jnp.float32).astype(jax_dtype(dtype))


def truncation_bound(stddev: float) -> float:
    """|w| bound of TN(stddev): 2 stds of the underlying normal, 2·stddev/0.8796."""
    return 2.0 * stddev / TRUNCATED_UNIT_STD


def stats(values, bound: float | None = None) -> dict:
    """{"std", "mean", "at_bound"} of an array of any dtype (computed in float64):
    `at_bound` is the share of entries with |w| >= `bound` (at the truncation bound or,
    rounded, beyond it; None without a bound)."""
    flat = np.asarray(np.asarray(values).astype(np.float32), np.float64).ravel()
    out = {"std": float(flat.std()), "mean": float(flat.mean()), "at_bound": None}
    if bound is not None and flat.size:
        out["at_bound"] = float(np.mean(np.abs(flat) >= bound))
    return out


TRUNCATED = ("he_normal", "lecun_normal", "glorot_normal", "truncated_normal")  # TN draws


def card_stats(rows: list[dict], drawn: dict, low: dict, init: str, bias_init: str,
               dtype: str) -> None:
    """Add `by_dtype` to each card row: {"float32": stats, dtype: stats} of the float32 draw
    (`drawn`) and the cast start (`low`), both {path tuple: array}; the bound is the
    truncated normal's where the row's rule is one (kernel: `init`; bias: `bias_init`)."""
    from initbench import initializers

    canonical = initializers.base(init)
    for row in rows:
        path = tuple(row["path"].split("/"))
        truncated = (bias_init == "truncated_normal" if row["rule"].startswith("bias ")
                     else canonical in TRUNCATED)
        expected = row.get("expected_std")
        bound = truncation_bound(expected) if truncated and expected else None
        row["by_dtype"] = {"float32": stats(drawn[path], bound), dtype: stats(low[path], bound)}


EQUIVALENCE_COLUMNS = ("init", "seeds", "float32_pct", "low_pct", "diff_pt", "ci90_low_pt",
                       "ci90_high_pt", "margin_pt", "tost_p", "verdict")


def equivalence_rows(reference, low, margin_pt: float = 0.5) -> list[dict]:
    """Per initializer, the paired difference of final test accuracy (`low` minus
    `reference`, two `results.RunResult`s of the same seeds and settings but the dtype), in
    points, and its TOST against ±`margin_pt` (`stats.tost`, 5%: the 90% CI inside the
    margin): "equivalent", "different" (the 95% CI excludes 0) or "inconclusive"."""
    from initbench import stats

    if list(reference.spec.seeds) != list(low.spec.seeds):
        raise ValueError("the two runs must have the same seeds (paired by seed)")
    rows = []
    for i, init in enumerate(reference.spec.inits):
        a = reference.metrics["test_accuracy"][i, :, -1] * 100
        b = low.metrics["test_accuracy"][low.spec.inits.index(init), :, -1] * 100
        diffs = b - a
        tost = stats.tost(diffs, margin_pt)
        low95, high95 = stats.t_ci(diffs, 0.95)
        verdict = ("equivalent" if tost.equivalent else
                   "different" if low95 > 0 or high95 < 0 else "inconclusive")
        rows.append({"init": init, "seeds": int(tost.n), "float32_pct": float(np.mean(a)),
                     "low_pct": float(np.mean(b)), "diff_pt": float(tost.mean),
                     "ci90_low_pt": float(tost.ci_low), "ci90_high_pt": float(tost.ci_high),
                     "margin_pt": margin_pt, "tost_p": float(tost.p_value), "verdict": verdict})
    return rows


def main(argv=None) -> int:
    """`python -m initbench.precision FLOAT32_RUN LOW_RUN [MARGIN_PT]`: the equivalence table
    (markdown on stdout) and dtype_equivalence.csv in LOW_RUN."""
    import sys
    from pathlib import Path

    from initbench import runfolder

    args = list(sys.argv[1:] if argv is None else argv)
    reference, low = runfolder.read_run(Path(args[0])), runfolder.read_run(Path(args[1]))
    rows = equivalence_rows(reference, low, float(args[2]) if len(args) > 2 else 0.5)
    (Path(args[1]) / "dtype_equivalence.csv").write_text(
        runfolder.csv_text(rows, EQUIVALENCE_COLUMNS))
    margin = rows[0]["margin_pt"]
    print(f"| init | float32 % | {low.spec.dtype} % | Δ pt [90% CI] | TOST p (±{margin:g} pt) "
          "| verdict |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['init']} | {r['float32_pct']:.2f} | {r['low_pct']:.2f} | "
              f"{r['diff_pt']:+.2f} [{r['ci90_low_pt']:+.2f}, {r['ci90_high_pt']:+.2f}] | "
              f"{r['tost_p']:.3g} | {r['verdict']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
