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


def test_keep_last_k(tmp_path):
    folder = str(tmp_path)
    for e in range(5):
        ck.save_checkpoint({"epoch": e}, os.path.join(folder, ck.checkpoint_name(e, 0)))
    ck.save_checkpoint({"epoch": 1}, os.path.join(folder, ck.BEST_NAME))
    ck.prune(folder, 2)
    assert sorted(os.listdir(folder)) == ["best.pt", "ckpt_e0003_i000000.pt", "ckpt_e0004_i000000.pt"]


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
