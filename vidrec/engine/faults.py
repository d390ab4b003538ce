"""Test-only fault injection, driven by the VIDREC_FAULT environment variable.

``VIDREC_FAULT=step:N``        SIGKILL this process right after optimizer step N (global, 1-based).
``VIDREC_FAULT=ckpt_write:N``  SIGKILL it half-way through writing its N-th checkpoint (1-based).
Used by the kill-and-resume test; unset in normal runs, where these are no-ops.
"""
from __future__ import annotations

import os
import signal

_ckpt_writes = 0


def _parse():
    spec = os.environ.get("VIDREC_FAULT", "")
    if not spec:
        return None, None
    kind, _, n = spec.partition(":")
    return kind, int(n)


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def after_step(global_step: int) -> None:
    kind, n = _parse()
    if kind == "step" and global_step == n:
        _die()


def checkpoint_write_hook():
    """A mid-write hook for atomic_write_bytes, or None when no fault is armed."""
    global _ckpt_writes
    kind, n = _parse()
    if kind != "ckpt_write":
        return None
    _ckpt_writes += 1
    return _die if _ckpt_writes == n else None
