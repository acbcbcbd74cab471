"""Every test runs offline, with its own empty cell cache and TFDS data dir."""

import pytest


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("INITBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    from initbench import data

    monkeypatch.setattr(data, "network_available", lambda *args, **kwargs: False)
