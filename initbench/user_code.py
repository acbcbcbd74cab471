"""Import a user's code named on the command line: FILE.py or package.module (--model, --dataset)."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from initbench.errors import InitbenchError


def is_file(where: str) -> bool:
    """Whether `where` names a file (FILE.py, a path) rather than a module (package.module)."""
    return where.endswith(".py") or "/" in where or "\\" in where


def one_line(err: BaseException) -> str:
    """`Type: first line of the message` (or `Type` alone), for one-line errors."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def import_module(what: str, where: str, prefix: str) -> ModuleType:
    """The module `where` (a Python file or an importable module). A file is loaded under
    `prefix` + a hash of its path, in `sys.modules` (dataclasses such as flax modules look
    themselves up there), with its folder on `sys.path` while it runs (so that it can import
    its neighbours). `what` ("--model X") starts every error: InitbenchError, one line."""
    if not is_file(where):
        try:
            return importlib.import_module(where)
        except Exception as err:
            raise InitbenchError(f"{what}: cannot import '{where}': {one_line(err)}") from None
    path = Path(where).resolve()
    module_name = prefix + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise InitbenchError(f"{what}: '{where}' is not a Python file.")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(path.parent))
    try:
        loader_spec.loader.exec_module(module)
    except Exception as err:
        sys.modules.pop(module_name, None)
        raise InitbenchError(f"{what}: importing '{where}' raised {one_line(err)}") from None
    finally:
        sys.path.remove(str(path.parent))
    return module
