"""Test-only fault injection, driven by the VIDREC_FAULT environment variable.

``VIDREC_FAULT=step:N``         SIGKILL this process right after optimizer step N (global, 1-based).
``VIDREC_FAULT=ckpt_write:N``   SIGKILL it half-way through writing its N-th checkpoint file (1-based;
                                step checkpoints and best.pt both count).
``VIDREC_FAULT=before_best:N``  SIGKILL it at its N-th best.pt update: after the step checkpoint is
                                written and registered, before best.pt is written.
``VIDREC_FAULT=after_ckpt:N``   SIGKILL it right after its N-th step checkpoint file is renamed into
                                place, before the checksum manifest lists it.

``VIDREC_FAULT_ACTION=raise`` raises :class:`InjectedFault` (a BaseException, so nothing catches it)
instead of killing: the files on disk are left exactly as a kill at that point leaves them, which lets
a test "crash" a run in-process and restart it at once. Used by the kill-and-resume tests; unset in
normal runs, where these are no-ops.
"""
from __future__ import annotations

import os
import signal
from collections import Counter

_hits: Counter = Counter()


class InjectedFault(BaseException):
    """The simulated crash of ``VIDREC_FAULT_ACTION=raise``."""


def _parse():
    spec = os.environ.get("VIDREC_FAULT", "")
    if not spec:
        return None, None
    kind, _, n = spec.partition(":")
    return kind, int(n)


def reset() -> None:
    """Forget the counts (an in-process test starting a new run)."""
    _hits.clear()


def _die() -> None:
    if os.environ.get("VIDREC_FAULT_ACTION") == "raise":
        raise InjectedFault(os.environ.get("VIDREC_FAULT", ""))
    os.kill(os.getpid(), signal.SIGKILL)


def after_step(global_step: int) -> None:
    kind, n = _parse()
    if kind == "step" and global_step == n:
        _die()


def point(name: str) -> None:
    """A named kill point: dies at its N-th pass when ``VIDREC_FAULT=name:N``."""
    kind, n = _parse()
    if kind != name:
        return
    _hits[name] += 1
    if _hits[name] == n:
        _die()


def checkpoint_write_hook():
    """A mid-write hook for atomic_write_bytes, or None when no fault is armed."""
    kind, n = _parse()
    if kind != "ckpt_write":
        return None
    _hits["ckpt_write"] += 1
    return _die if _hits["ckpt_write"] == n else None
