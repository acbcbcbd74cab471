"""Ctrl-C (SIGINT) and SIGTERM, for the CLI: recorded, and raised as KeyboardInterrupt
where the run can stop cleanly.

Python drops a KeyboardInterrupt raised inside a garbage-collector callback (JAX installs
one): it prints "Exception ignored" and the run went on to exit 0. So the handler records
the signal and does not raise there, and `check()` raises it again at the next safe point.
Inside `deferred()` (one training epoch, whose input state is donated and cannot be saved
half-way) nothing is raised until the epoch ends, so the chunk is checkpointed at its last
epoch first; a second signal stops at once.
"""

from __future__ import annotations

import contextlib
import gc
import signal
from collections.abc import Iterator

_received: list[int] = []
_deferring = 0


def install() -> None:
    """Handle SIGINT and SIGTERM in this (main) thread from now on; forget earlier ones
    (a second command in the same process starts clean)."""
    _received.clear()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _handle)


def _handle(signum: int, frame) -> None:
    _received.append(signum)
    if _deferring and len(_received) == 1:
        return
    if frame is not None and any(getattr(callback, "__code__", None) is frame.f_code
                                 for callback in gc.callbacks):
        return  # it would be swallowed here; `check()` raises it at the next safe point
    raise KeyboardInterrupt


def received() -> int | None:
    """The first signal received (signal.SIGINT or signal.SIGTERM), or None."""
    return _received[0] if _received else None


def pending() -> bool:
    """Whether a signal was received (the run should stop)."""
    return bool(_received)


def check() -> None:
    """Raise KeyboardInterrupt if a signal was received (and perhaps swallowed)."""
    if _received:
        raise KeyboardInterrupt


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Within: the first signal is only recorded (the caller checks `pending()` after)."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
