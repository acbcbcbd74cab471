"""Provenance recorded with every run: package versions, device, machine and git revision.
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path


def environment() -> dict:
    """Versions, device and git revision, recorded with every result."""
    import importlib.metadata as md

    import jax

    versions = {}
    for package in ("initbench", "jax", "jaxlib", "flax", "optax", "numpy", "scipy"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    devices = jax.devices()
    return {
        "versions": versions,
        "python": platform.python_version(),
        "device": {"platform": devices[0].platform, "kind": devices[0].device_kind,
                   "count": len(devices), "processes": jax.process_count()},
        "machine": {"system": platform.system(), "machine": platform.machine(),
                    "processor": platform.processor() or None},
        "git_revision": git_revision(),
    }


def git_revision() -> str | None:
    """The current git commit of the working tree ("+dirty" when tracked files have
    uncommitted changes), or None outside a repository."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).parent).stdout.strip()

    try:
        revision = git("rev-parse", "--short", "HEAD")
        dirty = revision and git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (revision + "+dirty" * bool(dirty)) or None
