"""Atomic writes: outputs respect the umask; stale temp files of killed writes are removed, live ones kept."""
import fcntl
import os
import stat
import subprocess
import sys
import time

import pytest

from vidrec.utils import io as vio

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Set the process umask for one test (restored after)."""
    saved = os.umask(0o022)
    os.umask(saved)
    yield lambda m: os.umask(m)
    os.umask(saved)


@pytest.mark.parametrize("mask,expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_respect_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    vio.atomic_write_text(str(tmp_path / "a.json"), "{}\n")
    vio.atomic_write_bytes(str(tmp_path / "sub" / "b.npy"), b"x" * 10)
    assert _mode(tmp_path / "a.json") == expected and _mode(tmp_path / "sub" / "b.npy") == expected
    vio.atomic_write_text(str(tmp_path / "a.json"), "{}\n")  # replacing an existing file: same rule
    assert _mode(tmp_path / "a.json") == expected
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


def test_checkpoint_and_predictions_json_are_0644_under_umask_022(tmp_path, umask):
    import torch

    from vidrec.engine import checkpoint as ck
    from vidrec.inference.outputs import write_json

    umask(0o022)
    ck.save_checkpoint({"epoch": 1, "model": {"w": torch.zeros(2)}}, str(tmp_path / ck.checkpoint_name(1, 0)))
    write_json(str(tmp_path / "predictions.json"), {"videos": []})
    assert _mode(tmp_path / ck.checkpoint_name(1, 0)) == 0o644 and _mode(tmp_path / "predictions.json") == 0o644


def _killed_mid_write(path: str) -> None:
    """A separate process that dies (SIGKILL) half-way through an atomic write of ``path``."""
    code = ("import os, signal; from vidrec.utils.io import atomic_write_bytes; "
            f"atomic_write_bytes({path!r}, b'x' * 1000, mid_write_hook=lambda: os.kill(os.getpid(), signal.SIGKILL))")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO)
    assert res.returncode == -9


def test_stale_temp_files_are_removed_live_and_foreign_ones_kept(tmp_path):
    out = tmp_path / "feats"
    out.mkdir()
    (out / "sub").mkdir()
    _killed_mid_write(str(out / "v.npy"))
    _killed_mid_write(str(out / "sub" / "w.json"))
    stale = sorted(n for n in os.listdir(out) if n.endswith(".tmp"))
    assert len(stale) == 1 and stale[0].startswith(".v.npy.")
    # A write in progress: the writer holds a lock on its temp file the whole time.
    live = out / ".x.npy.abcd1234.tmp"
    fd = os.open(live, os.O_CREAT | os.O_WRONLY, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    # Not ours: other hidden files, other '.tmp' names, and a folder named like a temp file.
    foreign = [out / ".notes", out / "keep.tmp", out / ".hidden.tmp", out / "v.npy"]
    for f in foreign:
        f.write_bytes(b"mine")
    (out / ".dir.abcd1234.tmp").mkdir()
    try:
        assert vio.remove_stale_temp_files(str(out), older_than=3600) == []  # all too recent
        removed = vio.remove_stale_temp_files(str(out))
        assert [os.path.basename(p) for p in removed] == stale
        assert live.exists() and all(f.exists() for f in foreign) and (out / ".dir.abcd1234.tmp").is_dir()
        assert [n for n in os.listdir(out / "sub") if n.endswith(".tmp")]  # not recursive by default
        vio.remove_stale_temp_files(str(out), recursive=True)
        assert not [n for n in os.listdir(out / "sub") if n.endswith(".tmp")]
    finally:
        os.close(fd)
    assert vio.remove_stale_temp_files(str(out)) == [str(live)]  # its writer is gone now
    assert vio.remove_stale_temp_files(str(tmp_path / "absent")) == []


def test_older_than_counts_from_the_last_write(tmp_path):
    _killed_mid_write(str(tmp_path / "v.npy"))
    (tmp_name,) = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    old = time.time() - 600
    os.utime(tmp_path / tmp_name, (old, old))
    assert vio.remove_stale_temp_files(str(tmp_path), older_than=900) == []
    assert vio.remove_stale_temp_files(str(tmp_path), older_than=300) == [str(tmp_path / tmp_name)]


def test_checkpoint_module_reexports_the_helper():
    from vidrec.engine import checkpoint as ck

    assert ck.remove_stale_temp_files is vio.remove_stale_temp_files
