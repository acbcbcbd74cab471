"""Every test runs offline, with its own empty cell cache and TFDS data dir, and writes
nothing outside temporary folders.

Per-user caches (compiled XLA programs, the parsed mnist-5k split, matplotlib's font list,
keras.json) go to one temporary folder for the whole session, removed at its end. They are
set here, at import, before any test (or a subprocess it starts) builds a
`Runtime.from_environment()`. The compilation cache is enabled there for the whole session
(`jax_setup.enable_compilation_cache`, which the CLI calls too), so tests that train through
the library reuse compiled programs as CLI runs do. `INITBENCH_TEST_TMP` names a folder to
use instead (the mutation runner shares one across its pytest runs so that unchanged
programs are not recompiled).
"""

import os
import shutil
import tempfile

import pytest

# pytest-xdist's workers get COLUMNS=80 from the controller; the CLI's tables would then
# wrap where a plain run (no terminal: 200 columns) does not. Tests that need a width set it.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.pop("COLUMNS", None)

_OWN_TMP = "INITBENCH_TEST_TMP" not in os.environ
SESSION_TMP = (tempfile.mkdtemp(prefix="initbench-tests-") if _OWN_TMP
               else os.environ["INITBENCH_TEST_TMP"])
os.environ["XDG_CACHE_HOME"] = os.path.join(SESSION_TMP, "xdg-cache")
os.environ["INITBENCH_XLA_CACHE"] = os.path.join(SESSION_TMP, "xla")
os.environ["MPLCONFIGDIR"] = os.path.join(SESSION_TMP, "matplotlib")
os.environ["KERAS_HOME"] = os.path.join(SESSION_TMP, "keras")  # TensorFlow (TFDS) writes keras.json


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "real_network: run with the real `data.network_available`, not the offline stub")
    from initbench import jax_setup
    from initbench.runtime import Runtime

    jax_setup.enable_compilation_cache(Runtime.from_environment().xla_cache)


def pytest_unconfigure(config):
    if _OWN_TMP:
        shutil.rmtree(SESSION_TMP, ignore_errors=True)


@pytest.fixture(autouse=True)
def _isolated(request, tmp_path, monkeypatch):
    monkeypatch.setenv("INITBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.chdir(tmp_path)  # a default `results/...` folder lands here, not in the clone
    if request.node.get_closest_marker("real_network"):
        return
    from initbench import data

    monkeypatch.setattr(data, "network_available", lambda *args, **kwargs: False)
