"""Where initbench keeps per-user caches (compiled programs, parsed datasets)."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir(*parts: str) -> Path:
    """$XDG_CACHE_HOME/initbench/<parts> (default ~/.cache/initbench/<parts>); not created."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base, "initbench", *parts)
