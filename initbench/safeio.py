"""Folders that are written whole or not at all, locked against concurrent writers, checked
for room and writability before any training.

`runfolder.py` and `cellcache.py` use these for run folders, the cell cache and user-named
outputs; nothing here knows what a run holds. Every failure the user can act on is an
`InitbenchError` naming the path; `describe_os_error` turns any other `OSError` into the
same kind of one line.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from initbench.errors import InitbenchError

# Room kept free on top of a write's estimate (file system metadata, other writers).
DISK_SLACK_BYTES = 1 << 20
_LOCK_SUFFIX = ".lock"


def describe_os_error(err: OSError, action: str = "cannot write") -> str:
    """One line for an OSError: the path, the reason, and that finished cells are kept."""
    path = err.filename if err.filename is not None else "?"
    reason = err.strerror or str(err) or type(err).__name__
    return (f"{action} {path}: {reason}. Finished cells are cached; the same command "
            "resumes once this is fixed.")


def check_out_name(folder: Path, option: str = "--out") -> None:
    """Refuse an --out that is empty, '.', '..' or a file system root."""
    text = str(folder)
    absolute = Path(os.path.abspath(text)) if text else Path.cwd()
    if text in ("", ".", "..") or absolute == Path(absolute.anchor) or absolute == Path.cwd():
        raise InitbenchError(f"{option} '{text}' is not a folder name initbench can write a run "
                             "into; give a new folder, e.g. results/my-run.")


def resolve_out(folder: Path, option: str = "--out") -> Path:
    """`folder`, or the folder a symbolic link `folder` points to; refuse dangling links and
    link loops with one line."""
    folder = Path(folder)
    try:
        is_link = folder.is_symlink()
    except OSError as err:
        raise InitbenchError(f"cannot use {option} {folder}: {err.strerror or err}.") from None
    if not is_link:
        return folder
    try:
        target = folder.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 reports a loop this way
        raise InitbenchError(f"{option} {folder} is a symbolic link loop.") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise InitbenchError(f"{option} {folder} is a symbolic link loop.") from None
        raise InitbenchError(f"{option} {folder} is a dangling symbolic link (to "
                             f"{os.readlink(folder)}); remove it or choose another folder.") \
            from None
    if not target.is_dir():
        raise InitbenchError(f"{option} {folder} links to {target}, which is not a folder.")
    return target


def probe_folder(folder: Path, needed_bytes: int = 0, option: str = "--out") -> None:
    """Fail before any work if `folder` (existing or not) cannot be written as a whole.

    Really creates and removes the folder itself (when new), a file in it and a sibling
    temporary folder (where `write_folder` assembles it): `os.access` says yes to /proc
    when run as root. Then checks that the file system has `needed_bytes` free.
    """
    folder = Path(folder)
    created: list[Path] = []
    try:
        try:
            if folder.exists() and not folder.is_dir():
                raise InitbenchError(f"{option} {folder} exists and is not a folder.")
            missing = []
            walk = folder
            while not os.path.lexists(walk) and walk != walk.parent:
                missing.append(walk)
                walk = walk.parent
            if not walk.is_dir():
                raise InitbenchError(f"cannot create {option} {folder}: {walk} is not a folder.")
            for path in reversed(missing):
                path.mkdir()
                created.append(path)
            fd, probe = tempfile.mkstemp(dir=folder, prefix=".initbench-probe-")
            os.close(fd)
            os.unlink(probe)
            os.rmdir(tempfile.mkdtemp(dir=folder.parent, prefix=_sibling(folder, "probe-")))
            free = shutil.disk_usage(folder).free
        except OSError as err:
            raise InitbenchError(
                f"cannot write {option} {folder}: {err.strerror or err}"
                f"{f' ({err.filename})' if err.filename else ''}."
            ) from None
    finally:
        for path in reversed(created):
            with contextlib.suppress(OSError):
                path.rmdir()
    if needed_bytes and free < needed_bytes + DISK_SLACK_BYTES:
        raise InitbenchError(
            f"not enough disk space for {option} {folder}: about {_size(needed_bytes)} needed, "
            f"{_size(free)} free."
        )


def _size(num_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if num_bytes < 1024 or unit == "TB":
            return f"{num_bytes:.0f} {unit}" if unit == "B" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1024
    return f"{num_bytes} B"  # pragma: no cover


def write_folder(folder: Path, files: dict[str, bytes], replaceable: tuple[str, ...] = ()) -> None:
    """Make `folder` hold `files` (name -> content), all at once.

    The files are assembled in a sibling temporary folder that then replaces `folder` by a
    rename, so a failure leaves the old folder or the whole new one, never a mix. Entries of
    an existing `folder` that are not in `files` and not in `replaceable` (files the user
    added) are moved into the new folder. Raises OSError; the temporary folder is removed.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=_sibling(folder, "tmp-")))
    old = None
    try:
        for name, content in files.items():
            with open(staging / name, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(staging / name, 0o666 & ~_umask())
        os.chmod(staging, 0o777 & ~_umask())
        if folder.is_dir() and any(folder.iterdir()):
            old = Path(tempfile.mkdtemp(dir=folder.parent, prefix=_sibling(folder, "old-")))
            os.rmdir(old)
            os.rename(folder, old)
            try:
                os.rename(staging, folder)
            except OSError:
                os.rename(old, folder)
                old = None
                raise
            for entry in old.iterdir():
                if entry.name not in files and entry.name not in replaceable:
                    with contextlib.suppress(OSError):
                        os.rename(entry, folder / entry.name)
        else:
            os.rename(staging, folder)  # over an empty folder (a reserved default name) too
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def reserve_folder(parent: Path, stem: str) -> Path:
    """Create and return a new empty folder parent/stem (or stem-2, stem-3, ...): `mkdir` is
    atomic, so two processes started in the same second never get the same folder."""
    parent = Path(parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        for suffix in range(1, 10_000):
            folder = parent / (stem if suffix == 1 else f"{stem}-{suffix}")
            try:
                folder.mkdir()
                return folder
            except FileExistsError:
                continue
    except OSError as err:
        raise InitbenchError(f"cannot create a run folder in {parent}: "
                             f"{err.strerror or err}.") from None
    raise InitbenchError(f"cannot create a run folder in {parent}: {stem}-2..9999 all exist.")


def remove_if_empty(folder: Path) -> None:
    """Remove `folder` if it exists and is empty (a reserved name whose run failed)."""
    with contextlib.suppress(OSError):
        Path(folder).rmdir()


def _sibling(folder: Path, tag: str) -> str:
    """A hidden sibling name `.NAME.TAG` that stays within NAME_MAX (255) for long names."""
    import hashlib

    name = folder.name
    if len(name) > 200:
        name = f"{name[:160]}~{hashlib.sha256(name.encode()).hexdigest()[:12]}"
    return f".{name}.{tag}"


def lock_path(folder: Path) -> Path:
    """The lock file of `folder`: a hidden sibling, so it survives the folder's replacement."""
    folder = Path(folder)
    return folder.parent / _sibling(folder, _LOCK_SUFFIX.lstrip("."))


@contextlib.contextmanager
def folder_lock(folder: Path, option: str = "--out") -> Iterator[None]:
    """Hold an exclusive lock on `folder` (fcntl.flock on a sibling lock file) for the block.

    A second process refuses at once with one line naming the holder (PID, host, start
    time). The lock file is removed on release; a lock file left by a killed process holds
    no lock (the kernel drops it with the process) and is simply taken over.
    """
    import fcntl

    path = lock_path(folder)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InitbenchError(f"cannot create {option} {folder}: {err.strerror or err}.") from None
    fd = None
    for _ in range(20):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise InitbenchError(f"cannot lock {option} {folder} ({path}): "
                                 f"{err.strerror or err}.") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise InitbenchError(
                f"{option} {folder} is being written by another initbench process ({holder}); "
                "wait for it to finish or choose another folder."
            ) from None
        except OSError:
            break  # a file system without flock (some network mounts): go on unlocked
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed the file while we waited: lock the new one
        fd = None
    try:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since "
                             f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        yield
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(path)
            os.close(fd)


def _read_holder(fd: int) -> str:
    with contextlib.suppress(OSError):
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
        if text:
            return text
    return "holder unknown"


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `data` to `path` via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:200]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"newline": ""})) as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are for sharing
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.filename is None and err.errno is not None:
            err.filename = str(path)  # a failed write() names no file: the message must
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
