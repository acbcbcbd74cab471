"""The suite itself: it writes nothing outside temporary folders (see conftest.py)."""

import os
import tempfile
from pathlib import Path

from initbench import paths
from initbench.runtime import Runtime


def test_caches_point_into_temporary_folders(tmp_path):
    import jax

    runtime = Runtime.from_environment()  # what every command builds its caches from
    temp = Path(tempfile.gettempdir()).resolve()
    home_cache = (Path.home() / ".cache").resolve()
    xla = Path(jax.config.jax_compilation_cache_dir).resolve()  # enabled by conftest
    assert xla == runtime.xla_cache.resolve()
    for where in (xla, paths.user_cache_dir().resolve(), Path(os.environ["MPLCONFIGDIR"]).resolve()):
        assert temp in where.parents, where
        assert home_cache not in where.parents and where != home_cache, where
    assert runtime.cell_cache.resolve().is_relative_to(tmp_path.resolve())
    assert Path.cwd().resolve() == tmp_path.resolve()  # default results/ folders land here
