"""Atomic file writes: a reader sees the old file or the complete new one, never half.

Every output goes through :func:`atomic_output` (:func:`atomic_write_bytes` for bytes): a hidden temp file
``.<name>.<random>.tmp`` in the same folder, created with mode ``0o666`` so the
kernel applies the umask (and any default ACL) exactly as for a plain
``open()``, written, fsynced and renamed over ``<name>``. The writer holds an
exclusive ``flock`` on its temp file from creation until after the rename, so
:func:`remove_stale_temp_files` can tell the temp file of a live write (locked)
from the leftover of a killed one (unlocked) and removes only the latter.
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
import time
from typing import Callable, Iterator, List, Optional, Tuple

try:
    import fcntl
except ImportError:  # not POSIX: no locks, temp files are judged by age alone
    fcntl = None

# '.<name>.<random>.tmp' as atomic writes (and tempfile.mkstemp before them) name their temp files.
TEMP_RE = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp$")
_RANDOM_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"
# Where a file system cannot lock, a temp file counts as abandoned only once unwritten for this long.
UNLOCKABLE_STALE_AFTER_S = 3600.0


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


def _lock(fd: int, blocking: bool = True) -> Optional[bool]:
    """flock(LOCK_EX) ``fd``: True when held, False when another process holds it (non-blocking),
    None when this file system or platform cannot lock."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        return True
    except BlockingIOError:
        return False
    except OSError:
        return None


def _create_temp(folder: str, name: str) -> Tuple[int, str]:
    """Create and lock a new ``folder/.<name>.<random>.tmp``; -> (fd, path)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f".{name}.{''.join(secrets.choice(_RANDOM_CHARS) for _ in range(8))}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)  # the umask applies, as for any open()
        except FileExistsError:
            continue
        _lock(fd)
        if os.fstat(fd).st_nlink == 0:  # a cleaner took it for stale between our open and our lock
            os.close(fd)
            continue
        return fd, tmp
    raise FileExistsError(f"could not create a temp file for {name} in {folder}")


@contextlib.contextmanager
def atomic_output(path: str) -> Iterator[str]:
    """A locked temp file beside ``path`` for the block to write (by name: an encoder opens it
    itself); fsynced and renamed over ``path`` when the block ends, removed when it raises.

    The temp name starts with '.' and ends with '.tmp' so checkpoint discovery never matches
    it; it is locked until the rename (see the module docstring). The result has the mode a
    plain ``open(path, "wb")`` would give (0o666 minus the umask).
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = _create_temp(folder, os.path.basename(path))
    replaced = False
    try:
        yield tmp
        os.fsync(fd)  # the file's data, whichever descriptor wrote it
        os.replace(tmp, path)  # still locked: a cleaner never sees this temp file unlocked
        replaced = True
    finally:
        if not replaced:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        os.close(fd)
    fsync_dir(folder)


def atomic_write_bytes(path: str, data: bytes, mid_write_hook: Optional[Callable[[], None]] = None) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_output`. ``mid_write_hook`` runs after half
    the bytes are written (used by tests to kill the process mid-write)."""
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        half = len(data) // 2
        f.write(data[:half])
        if mid_write_hook is not None:
            f.flush()
            mid_write_hook()
        f.write(data[half:])


def atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _remove_if_stale(path: str, cutoff: float) -> bool:
    """Unlink ``path`` when it is a regular file last written before ``cutoff`` that no live writer locks."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:  # gone meanwhile, a symlink, not ours to read
        return False
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_mtime > cutoff:
            return False
        held = _lock(fd, blocking=False)
        if held is False:
            return False  # a live write
        if held is None and st.st_mtime > time.time() - UNLOCKABLE_STALE_AFTER_S:
            return False  # cannot tell: only old ones go
        now = os.lstat(path)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            return False
        os.unlink(path)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def remove_stale_temp_files(folder: str, older_than: float = 0.0, recursive: bool = False) -> List[str]:
    """Delete the temp files that killed atomic writes left in ``folder``; -> the paths removed, sorted.

    Only names of the atomic-write pattern ``.<name>.<random>.tmp`` that are
    regular files are considered, and of those only the ones no live process is
    writing (the writer's lock is free) and last modified more than
    ``older_than`` seconds ago. ``recursive`` also cleans sub-folders (symlinked
    folders are not followed). Safe to run while other processes write there.
    """
    if not os.path.isdir(folder):
        return []
    cutoff = time.time() - older_than
    removed = []
    walk = os.walk(folder) if recursive else [(folder, None, os.listdir(folder))]
    for dp, _, names in walk:
        for name in names:
            if TEMP_RE.match(name) and _remove_if_stale(os.path.join(dp, name), cutoff):
                removed.append(os.path.join(dp, name))
    return sorted(removed)
