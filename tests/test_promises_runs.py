"""README promises about what the runner trains, stops on and caches, checked at the runner
with fabricated cells (no training): `--seeds auto` stopping, learning-rate cache entries, the
data fingerprint and the validation split."""

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats as sps

from initbench import cellcache, data, results
from initbench import grid as grid_lib
from initbench.grid import Grid
from initbench.progress import SilentReporter
from initbench.runtime import Runtime
from initbench.spec import Spec


def _t_half(d, level=0.97):
    d = np.asarray(d, float)
    return sps.t.ppf(0.5 + level / 2, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)


def _fake_train_grid(finals):
    """A stand-in for `grid_lib.train_grid`: final test accuracy of init i at seed s is
    finals(i, s), as [init, seed, epoch] curves over epochs 0 and 1."""
    def train_grid(spec, dataset, runtime, reporter, **kwargs):
        acc = np.array([[[0.1, finals(i, s)] for s in spec.seeds]
                        for i in range(len(spec.inits))])
        metrics = {"test_accuracy": acc, "test_loss": 1 - acc, "train_loss": 1 - acc}
        return Grid(metrics, {}, acc.shape[0] * acc.shape[1], {})
    return train_grid


NOISE = np.array([0.011, -0.007, 0.003, 0.012, -0.009, 0.004, -0.010, 0.008, -0.002, 0.006])
# e: alternating, so b - a (= +e) and c - a (= -e) are precise at 5 seeds but b - c (= 2e) is not.
E = 0.0021 * np.array([1, -1, 1, -1, 1, -1, 1, -1, 1, -1])


def _auto(monkeypatch, inits, finals, precision, pairs, max_seeds=10):
    monkeypatch.setattr(grid_lib, "train_grid", _fake_train_grid(finals))
    spec = Spec(inits=inits, dataset="digits", epochs=1, hidden=(4,), precision=precision,
                max_seeds=max_seeds)
    _, record = grid_lib.train_until_precise(spec, None, Runtime.from_environment(),
                                               SilentReporter(), inits[0], pairs)
    return record


def test_seeds_auto_precision_is_in_points(monkeypatch):
    """--precision 0.5 means 0.5 accuracy points (0.005), the unit the user typed."""
    diffs = 0.02 + NOISE  # a 97% half-width of ~1 point at 5 seeds
    assert 0.005 < _t_half(diffs[:5]) < 0.02

    def finals(i, s):
        return 0.8 + (diffs[s] if i else 0.0)

    coarse = _auto(monkeypatch, ("xavier", "he_normal"), finals, 2.0, "baseline")
    assert (coarse["seeds_used"], coarse["stop_reason"]) == (5, "precision reached")
    assert coarse["half_widths_pt"] == pytest.approx([100 * _t_half(diffs[:5])])
    fine = _auto(monkeypatch, ("xavier", "he_normal"), finals, 0.5, "baseline")
    assert fine["seeds_used"] == 10 and fine["stop_reason"] == "max seeds"
    assert fine["half_widths_pt"] == pytest.approx([100 * _t_half(diffs)])


def test_seeds_auto_pairs_all_waits_for_every_pair(monkeypatch):
    """With --pairs all every pair, not only those with the baseline, must be precise."""
    assert _t_half(E[:5]) < 0.005 < _t_half(2 * E[:5])

    def finals(i, s):
        return 0.8 + NOISE[s] + [0.0, 0.01 + E[s], 0.01 - E[s]][i]

    inits = ("xavier", "he_normal", "lecun_normal")
    baseline = _auto(monkeypatch, inits, finals, 0.5, "baseline")
    assert (baseline["seeds_used"], baseline["stop_reason"]) == (5, "precision reached")
    every = _auto(monkeypatch, inits, finals, 0.5, "all")
    assert every["seeds_used"] == 10
    assert len(every["half_widths_pt"]) == 3


class _FakeRunner:
    """Trains a cell instantly: every metric is lr + seed / 100 (so rates differ)."""

    def __init__(self, spec):
        self.spec, self.trained = spec, []

    def train(self, chunk, reporter, epoch_hook=None, timings=None, on_epoch=None):
        for init, seed, d, lr in chunk:
            self.trained.append((init, seed, d, lr))
            value = lr + seed / 100
            yield {name: np.full(self.spec.epochs + 1, value)
                   for name in results.metric_names(self.spec)}


def test_cells_of_different_learning_rates_never_share_a_cache_entry():
    spec = Spec(inits=("xavier",), seeds=(0, 1), dataset="digits", epochs=1, hidden=(4,),
                lr=(0.01, 0.1))
    dataset, _ = data.load_data(spec)
    runtime = Runtime.from_environment()
    fake = _FakeRunner(spec)
    first = grid_lib.train_grid(spec, dataset, runtime, SilentReporter(),
                                  make_runner=lambda: fake)
    assert len(fake.trained) == 4

    def no_training():
        raise AssertionError("every cell should come from the cache")

    again = grid_lib.train_grid(spec, dataset, runtime, SilentReporter(),
                                  make_runner=no_training)
    want = np.array([[[0.01, 0.02], [0.1, 0.11]]])  # [init, lr, seed]
    for grid in (first, again):
        np.testing.assert_allclose(grid.metrics["test_accuracy"][..., -1], want)
    # The single-rate run of each rate finds its own cells (and only those).
    for lr, values in ((0.01, [0.01, 0.02]), (0.1, [0.1, 0.11])):
        one = grid_lib.train_grid(spec.at_lr(lr), dataset, runtime, SilentReporter(),
                                    make_runner=no_training)
        np.testing.assert_allclose(one.metrics["test_accuracy"][..., -1], [values])


def test_data_fingerprint_and_cache_key_cover_the_test_arrays():
    """Other test images under the same name must retrain: another fingerprint and key."""
    spec = Spec(inits=("xavier",), seeds=(0,), dataset="digits", epochs=1, hidden=(4,))
    base, _ = data.load_data(spec)
    variants = {
        "x_test": dataclasses.replace(base, x_test=base.x_test[::-1].copy()),
        "y_test": dataclasses.replace(base, y_test=np.roll(base.y_test, 1)),
        "x_train": dataclasses.replace(base, x_train=base.x_train[::-1].copy()),
    }
    prints = {name: data.fingerprint(d) for name, d in variants.items()}
    assert data.fingerprint(base) not in prints.values()
    assert len(set(prints.values())) == 3
    keys = {cellcache.cache_key(spec, d) for d in (base, *variants.values())}
    assert len(keys) == 4


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_the_cache_key_covers_the_image_shape_where_the_arrays_do_not_imply_it(model):
    """The same flat arrays seen as 8x8x1 and as 4x16x1 (a user .npz reshaped: another
    input to a convolution) are two keys; a shape the arrays imply adds nothing, so the
    keys cached before stay (every registered dataset's shape is the implied one)."""
    spec = Spec(inits=("xavier",), seeds=(0,), dataset="digits", epochs=1, model=model,
                **({"hidden": (4,)} if model == "mlp" else {}))
    base, _ = data.load_data(spec)
    wide = dataclasses.replace(base, image_shape=(4, 16, 1))
    assert data.fingerprint(wide) == data.fingerprint(base)  # the arrays alone are equal
    assert cellcache.cache_key(spec, wide) != cellcache.cache_key(spec, base)
    tall = dataclasses.replace(base, image_shape=(16, 4, 1))
    assert len({cellcache.cache_key(spec, d) for d in (base, wide, tall)}) == 3
    assert "image_shape" not in cellcache.cache_key_parts(spec, base)
    for name in data.names():
        shape = data.info(name).image_shape
        assert cellcache.implied_image_shape(math.prod(shape)) == shape, name
    assert cellcache.implied_image_shape(3 * 17 * 17) == (17, 17, 3)
    assert cellcache.implied_image_shape(10) is None


def test_validation_split_is_stratified_by_class():
    """Each class keeps its share in both parts (to within one example), on a set whose
    classes are very unequal, so an unstratified split would miss it."""
    spec = Spec(inits=("xavier",), seeds=(0,), dataset="digits", epochs=1, hidden=(4,))
    base, _ = data.load_data(spec)
    # 3 classes: 900, 90 and 10 examples, sorted by class (a head/tail split would lose one).
    y = np.repeat(np.arange(3), [900, 90, 10]).astype(base.y_train.dtype)
    x = np.arange(y.size, dtype=base.x_train.dtype)[:, None] * np.ones(
        (1, *base.x_train.shape[1:]), base.x_train.dtype)
    small = dataclasses.replace(base, x_train=x, y_train=y)
    split = data.split_validation(small, 0.1)
    np.testing.assert_array_equal(np.bincount(split.y_val, minlength=3), [90, 9, 1])
    np.testing.assert_array_equal(np.bincount(split.y_train, minlength=3), [810, 81, 9])
    # Nothing lost or duplicated; both parts in their original order.
    ids = np.concatenate([split.x_train[:, 0], split.x_val[:, 0]]).ravel()
    assert sorted(ids.tolist()) == list(range(y.size))
    assert np.all(np.diff(split.x_val[:, 0].ravel()) > 0)
    # The digits run's own split is stratified too.
    val = data.split_validation(base, 0.1)
    share = np.bincount(val.y_val, minlength=10) / np.bincount(base.y_train, minlength=10)
    assert np.all(np.abs(share - 0.1) < 0.03)


def test_no_cache_reads_no_cached_cell():
    spec = Spec(inits=("xavier",), seeds=(0, 1), dataset="digits", epochs=1, hidden=(4,))
    dataset, _ = data.load_data(spec)
    runtime = Runtime.from_environment()
    grid_lib.train_grid(spec, dataset, runtime, SilentReporter(),
                          make_runner=lambda: _FakeRunner(spec))
    fake = _FakeRunner(spec)
    grid = grid_lib.train_grid(spec, dataset, runtime.replace(use_cache=False),
                                 SilentReporter(), make_runner=lambda: fake)
    assert grid.trained == 2 and len(fake.trained) == 2


def test_xla_cache_off_keeps_no_compiled_programs(monkeypatch):
    from initbench import jax_setup
    from initbench.runtime import Runtime

    monkeypatch.setenv("INITBENCH_XLA_CACHE", "off")
    runtime = Runtime.from_environment()
    assert runtime.xla_cache is None
    calls = []
    monkeypatch.setattr("jax.config.update", lambda *args: calls.append(args))
    jax_setup.enable_compilation_cache(runtime.xla_cache)
    assert calls == []
