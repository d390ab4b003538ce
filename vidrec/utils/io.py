"""Atomic file writes: a reader sees the old file or the complete new one, never half."""
from __future__ import annotations

import os
import tempfile
from typing import Callable, Optional


def fsync_dir(path: str) -> None:
    """Persist a rename (directory entry) on POSIX; a no-op where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str, data: bytes, mid_write_hook: Optional[Callable[[], None]] = None) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync, os.replace.

    The temp name starts with '.' and ends with '.tmp' so checkpoint discovery
    never matches it. ``mid_write_hook`` runs after half the bytes are written
    (used by tests to kill the process mid-write).
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            half = len(data) // 2
            f.write(data[:half])
            if mid_write_hook is not None:
                f.flush()
                mid_write_hook()
            f.write(data[half:])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(folder)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
