import logging
import os
import pickle

import pytest
import torch

from vidrec.engine import checkpoint as ck
from vidrec.utils.rng import get_rng_state, set_rng_state


class _Evil:
    """Unpickling this runs a command: exactly what must never be loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_unsafe_pickle_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = str(tmp_path / "evil.pt")
    torch.save({"model": {"w": torch.ones(2)}, "extra": _Evil(marker)}, path)
    with pytest.raises(ck.UnsafeCheckpointError, match="Refusing to load"):
        ck.safe_load(path)
    assert not marker.exists()
    # A raw pickle (not even a torch file) is refused too, never executed.
    raw = str(tmp_path / "raw.pkl")
    with open(raw, "wb") as f:
        pickle.dump(_Evil(marker), f)
    with pytest.raises(ck.CheckpointError):
        ck.safe_load(raw)
    assert not marker.exists()
    with pytest.raises(ck.UnsafeCheckpointError):
        ck.load_weights(torch.nn.Linear(2, 2), path)


def test_truncated_and_temp_files_are_never_used(tmp_path):
    folder = tmp_path / "checkpoints"
    state = {"model": {"w": torch.arange(4.0)}, "epoch": 1, "iter": 0}
    ck.save_checkpoint(state, str(folder / ck.checkpoint_name(1, 0)))
    # A crash mid-write leaves a hidden temp file: it must not be picked up.
    (folder / ".ckpt_e0002_i000000.pt.abc.tmp").write_bytes(b"PK\x03\x04 half")
    # Even a truncated file under a real name (not produced by atomic writes) is skipped.
    good = (folder / ck.checkpoint_name(1, 0)).read_bytes()
    (folder / ck.checkpoint_name(3, 0)).write_bytes(good[: len(good) // 2])
    assert [os.path.basename(p) for p in ck.list_checkpoints(str(folder))] == ["ckpt_e0001_i000000.pt",
                                                                               "ckpt_e0003_i000000.pt"]
    path, loaded = ck.latest_loadable(str(folder))
    assert path.endswith("ckpt_e0001_i000000.pt") and torch.equal(loaded["model"]["w"], torch.arange(4.0))
    ck.remove_stale_temp_files(str(folder))
    assert not any(n.endswith(".tmp") for n in os.listdir(folder))


def _write_listed(folder, manifest, epoch, it=0, **extra):
    """A checkpoint as training writes it: the file, then its manifest entry."""
    state = {"epoch": epoch, "iter": it, "global_step": epoch * 10 + it,
             "model": {"w": torch.full((64,), float(epoch))}}
    name = ck.checkpoint_name(epoch, it)
    manifest.add(name, ck.save_checkpoint(state, os.path.join(folder, name)), state, **extra)
    manifest.save()
    return name


def test_keep_last_k_prunes_only_what_the_run_wrote(tmp_path):
    folder = str(tmp_path / "checkpoints")
    m = ck.Manifest(folder)
    for e in range(5):
        _write_listed(folder, m, e)
    ck.save_checkpoint({"epoch": 1}, os.path.join(folder, ck.BEST_NAME))
    # Files the run did not write sort later by name (a half-copied folder): never deleted, never counted.
    for e in (8, 9):
        open(os.path.join(folder, ck.checkpoint_name(e, 0)), "wb").write(b"PK\x03\x04 half a copy")
    assert ck.prune(folder, 2) == []  # no manifest: name order alone never deletes anything
    assert len(os.listdir(folder)) == 8
    removed = ck.prune(folder, 2, m, protect=[ck.checkpoint_name(0, 0)])  # e.g. the last healthy one
    assert removed == ["ckpt_e0001_i000000.pt", "ckpt_e0002_i000000.pt"]
    assert sorted(os.listdir(folder)) == ["best.pt", "ckpt_e0000_i000000.pt", "ckpt_e0003_i000000.pt",
                                          "ckpt_e0004_i000000.pt", "ckpt_e0008_i000000.pt", "ckpt_e0009_i000000.pt"]
    assert sorted(m.files) == ["ckpt_e0000_i000000.pt", "ckpt_e0003_i000000.pt", "ckpt_e0004_i000000.pt"]
    # A listed file whose size changed is corrupt: set aside, and it never takes a good one's place.
    newest = os.path.join(folder, ck.checkpoint_name(4, 0))
    open(newest, "ab").write(b"junk")
    assert ck.prune(folder, 1, m) == ["ckpt_e0000_i000000.pt"]
    assert os.path.isfile(newest + ".corrupt") and os.path.isfile(os.path.join(folder, ck.checkpoint_name(3, 0)))


def _patch_tensor(path, tensor, value):
    """Overwrite a tensor's bytes inside a torch.save archive in place (same size: zip CRCs are not checked)."""
    data = open(path, "rb").read()
    raw = tensor.numpy().tobytes()
    at = data.index(raw)
    patched = data[:at] + torch.full_like(tensor, value).numpy().tobytes() + data[at + len(raw):]
    open(path, "wb").write(patched)


@pytest.mark.parametrize("value", [float("nan"), 1.0])
def test_changed_bytes_are_detected_and_the_previous_good_checkpoint_used(tmp_path, value, caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("vidrec"), "propagate", True)  # a Trainer's setup_logging turns it off
    folder = str(tmp_path / "checkpoints")
    m = ck.Manifest(folder)
    for e in (1, 2):
        _write_listed(folder, m, e)
    bad = os.path.join(folder, ck.checkpoint_name(2, 0))
    _patch_tensor(bad, torch.full((64,), 2.0), value)
    assert torch.load(bad, weights_only=True)["epoch"] == 2  # still loads: only the checksum tells
    m = ck.Manifest(folder)  # as a restart reads it
    with pytest.raises(ck.CheckpointError, match="checksum mismatch"):
        ck.load_verified(bad, m)
    with caplog.at_level("WARNING"):
        found = ck.find_resume(folder, m, rename_corrupt=True)
    assert found["path"].endswith("ckpt_e0001_i000000.pt") and found["verified"]
    assert torch.equal(found["state"]["model"]["w"], torch.full((64,), 1.0))
    assert found["corrupt"] == [bad] and os.path.isfile(bad + ".corrupt") and not os.path.exists(bad)
    assert any(r.getMessage().count("\n") == 0 and "ckpt_e0002_i000000.pt" in r.getMessage()
               and "checksum mismatch" in r.getMessage() for r in caplog.records)
    assert ck.checkpoint_name(2, 0) not in m.files


def test_resume_order_listed_then_best_then_unlisted(tmp_path):
    folder = str(tmp_path / "checkpoints")
    m = ck.Manifest(folder)
    _write_listed(folder, m, 1)
    state = {"epoch": 2, "iter": 0, "global_step": 20, "model": {"w": torch.zeros(64)}}
    m.add(ck.BEST_NAME, ck.save_checkpoint(state, os.path.join(folder, ck.BEST_NAME)), state)
    m.save()
    # An unlisted newer file (an interrupted save: renamed, never listed) is not preferred to a verified one.
    ck.save_checkpoint({"epoch": 3, "iter": 0}, os.path.join(folder, ck.checkpoint_name(3, 0)))
    found = ck.find_resume(folder, m)
    assert found["path"].endswith("ckpt_e0001_i000000.pt") and found["ignored"] == ["ckpt_e0003_i000000.pt"]
    # Every listed step checkpoint corrupt: best.pt, verified, comes next.
    open(os.path.join(folder, ck.checkpoint_name(1, 0)), "r+b").write(b"XX")
    found = ck.find_resume(folder, m)
    assert found["path"].endswith(ck.BEST_NAME) and found["verified"]
    # No manifest at all (an older vidrec's run): the newest file that loads, unverified.
    found = ck.find_resume(folder, ck.Manifest(folder, read=False))
    assert found["path"].endswith("ckpt_e0003_i000000.pt") and not found["verified"]


def test_safetensors_export_and_weight_loading(tmp_path):
    torch.manual_seed(0)
    src = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    ck.save_checkpoint({"model": src.state_dict()}, str(tmp_path / "c.pt"))
    out = ck.export_safetensors(str(tmp_path / "c.pt"), str(tmp_path / "w.safetensors"))
    dst = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    ck.load_weights(dst, out, strict=True)
    for (k, a), b in zip(src.state_dict().items(), dst.state_dict().values()):
        assert torch.equal(a, b), k
    # A new classifier size: mismatched tensors are skipped and reported (fine-tuning).
    other = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 7))
    report = ck.load_weights(other, out, strict=False)
    assert sorted(report["mismatched"]) == ["2.bias", "2.weight"]
    with pytest.raises(ck.CheckpointError):
        ck.load_weights(other, out, strict=True)


def test_rng_state_is_weights_only_serialisable(tmp_path):
    import random

    import numpy as np

    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    np.random.normal()  # leave a cached gaussian around
    state = get_rng_state()
    path = str(tmp_path / "rng.pt")
    ck.save_checkpoint({"rng": [state]}, path)
    expect = (torch.rand(3), np.random.rand(3), random.random(), np.random.normal())
    set_rng_state(ck.safe_load(path)["rng"][0])
    got = (torch.rand(3), np.random.rand(3), random.random(), np.random.normal())
    assert torch.equal(expect[0], got[0]) and np.array_equal(expect[1], got[1])
    assert expect[2] == got[2] and expect[3] == got[3]
