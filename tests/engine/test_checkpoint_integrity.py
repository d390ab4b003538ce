"""Checkpoints never lose or silently corrupt work: corrupt or patched files are detected and the previous
good one is used, pruning deletes only what the run wrote, a diverged run names (and keeps) the checkpoint
to retry from, and best.pt always agrees with the recorded history.

Crashes are simulated in-process (an exception raised where a SIGKILL would land leaves the same files),
so each case takes seconds; test_resume.py does the real SIGKILLs.
"""
import json
import os
import shutil

import pytest
import torch

from vidrec.engine import checkpoint as ck
from vidrec.engine import distributed as du

from .conftest import tiny_cfg

# 2 epochs x 4 steps; step checkpoints after steps 2, 4 (epoch end, validated), 6, 8; the last 2 kept.
BASE = dict(SOLVER__MAX_EPOCH=2, TRAIN__CHECKPOINT_ITERS=2, TRAIN__KEEP_LAST=2, TRAIN__EVAL_PERIOD=1,
            TEST__ENABLE=False, LOG_PERIOD=1)
VAL_TOP1 = {1: 60.0, 2: 50.0}  # scripted validation: epoch 1 is the best


class Killed(BaseException):
    """Where a SIGKILL would land (nothing catches a BaseException, so nothing more is written)."""


def _install_val(mp, top1_by_epoch):
    from vidrec.engine import trainer

    real = trainer.evaluate

    def scripted(model, dataset, cfg, ctx, desc=""):
        res = real(model, dataset, cfg, ctx, desc=desc)
        res["metrics"]["top1"] = float(top1_by_epoch[int(desc.split()[-1])])
        return res

    mp.setattr(trainer, "evaluate", scripted)


def _train(root, out, **over):
    from vidrec.engine import faults, train

    getattr(faults, "reset", lambda: None)()  # (getattr: the same test runs against the code before the manifest)
    return train(tiny_cfg(root, out, **dict(BASE, **over)))


def _trainer(root, out, **over):
    from vidrec.engine.trainer import Trainer

    cfg = tiny_cfg(root, out, **dict(BASE, **over))
    return Trainer(cfg, du.init_distributed(cfg))


def _records(out):
    drop = ("time", "seconds", "data_wait_seconds")
    lines = open(os.path.join(out, "metrics.jsonl")).read().splitlines()
    return [{k: v for k, v in json.loads(ln).items() if k not in drop} for ln in lines]


def _final(out):
    return ck.safe_load(os.path.join(out, "model_final.safetensors"))


def _same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def ref(synthetic_root, tmp_path_factory):
    """An uninterrupted run: what every recovered run below must reproduce bitwise."""
    out = str(tmp_path_factory.mktemp("integrity") / "ref")
    with pytest.MonkeyPatch.context() as mp:
        _install_val(mp, VAL_TOP1)
        _train(synthetic_root, out)
    assert sorted(os.listdir(os.path.join(out, "checkpoints"))) == ["best.pt", "ckpt_e0001_i000002.pt",
                                                                    "ckpt_e0002_i000000.pt"]
    return out


@pytest.fixture
def val(monkeypatch):
    _install_val(monkeypatch, VAL_TOP1)


def _log(out):
    return open(os.path.join(out, "log.txt")).read()


def test_all_step_checkpoints_corrupt_resumes_from_best_and_loses_nothing(synthetic_root, ref, tmp_path, val):
    """Item 1: a half-copied folder (every step checkpoint truncated, best.pt intact)."""
    out = str(tmp_path / "copy")
    shutil.copytree(ref, out)
    for p in ck.list_checkpoints(os.path.join(out, "checkpoints")):
        data = open(p, "rb").read()
        open(p, "wb").write(data[: len(data) // 2])
    _train(synthetic_root, out)
    log = _log(out)
    assert "resuming from best.pt (epoch 1, step 4)" in log  # not from scratch, and it says so
    names = sorted(os.listdir(os.path.join(out, "checkpoints")))
    assert names == ["best.pt", "ckpt_e0001_i000002.pt", "ckpt_e0001_i000002.pt.corrupt", "ckpt_e0002_i000000.pt",
                     "ckpt_e0002_i000000.pt.corrupt"]  # new ones kept, corrupt ones set aside (not used, not pruned)
    best = ck.safe_load(os.path.join(out, "checkpoints", "best.pt"))
    assert best["epoch"] == 1  # not overwritten by a worse epoch
    assert _same_weights(_final(out), _final(ref))
    assert _records(out) == _records(ref)  # the work after best.pt was redone once; nothing mixed in

    # Nothing usable left at all (no best.pt either): refused with one line, never a silent restart.
    out2 = str(tmp_path / "copy2")
    shutil.copytree(ref, out2)
    os.unlink(os.path.join(out2, "checkpoints", "best.pt"))
    for p in ck.list_checkpoints(os.path.join(out2, "checkpoints")):
        open(p, "r+b").write(b"\0" * 64)
    with pytest.raises(ck.CheckpointError, match="no usable checkpoint in .*move them away") as e:
        _trainer(synthetic_root, out2)
    assert "\n" not in str(e.value)


def test_patched_checkpoint_is_detected_and_the_previous_one_used(synthetic_root, ref, tmp_path, val):
    """Item 2: bytes changed inside a valid checkpoint (a same-size patch: it still loads)."""
    out = str(tmp_path / "copy")
    shutil.copytree(ref, out)
    bad = os.path.join(out, "checkpoints", "ckpt_e0002_i000000.pt")
    state = ck.safe_load(bad)
    key = max((k for k, v in state["model"].items() if v.is_floating_point()), key=lambda k: state["model"][k].numel())
    raw = bytes(state["model"][key].untyped_storage())
    data = open(bad, "rb").read()
    assert data.count(raw) == 1
    open(bad, "wb").write(data.replace(raw, torch.ones(len(raw) // 4).numpy().tobytes()))
    assert torch.all(ck.safe_load(bad)["model"][key] == 1.0)
    _train(synthetic_root, out)
    warned = [ln for ln in _log(out).splitlines() if "ckpt_e0002_i000000.pt" in ln and "checksum mismatch" in ln]
    assert warned, "no line names the patched file"
    assert os.path.isfile(bad + ".corrupt")
    assert _same_weights(_final(out), _final(ref))  # resumed from ckpt_e0001_i000002.pt, redid the rest
    assert _records(out) == _records(ref)


def test_kills_between_checkpoint_manifest_and_best_resume_exactly(synthetic_root, ref, tmp_path, val, monkeypatch):
    """The windows the manifest adds: killed before best.pt is written (after the step checkpoint is
    listed), and after a step checkpoint's rename but before the manifest lists it."""
    from vidrec.engine.faults import InjectedFault

    out = str(tmp_path / "run")
    monkeypatch.setenv("VIDREC_FAULT_ACTION", "raise")
    monkeypatch.setenv("VIDREC_FAULT", "before_best:1")  # epoch 1 ends, ckpt_e0001_i000000 is listed: killed
    with pytest.raises(InjectedFault):
        _train(synthetic_root, out)
    assert not os.path.exists(os.path.join(out, "checkpoints", "best.pt"))
    monkeypatch.setenv("VIDREC_FAULT", "after_ckpt:2")  # ckpt_e0002_i000000.pt renamed, never listed: killed
    with pytest.raises(InjectedFault):
        _train(synthetic_root, out)
    monkeypatch.delenv("VIDREC_FAULT")
    _train(synthetic_root, out)
    log = _log(out)
    assert "best.pt was missing: re-created from ckpt_e0001_i000000.pt" in log
    assert "ignoring checkpoint(s) newer than ckpt_e0001_i000002.pt" in log and "ckpt_e0002_i000000.pt" in log
    assert _same_weights(_final(out), _final(ref))
    assert _records(out) == _records(ref)
    got, want = (ck.safe_load(os.path.join(d, "checkpoints", "best.pt")) for d in (out, ref))
    assert got["global_step"] == want["global_step"] == 4 and _same_weights(got["model"], want["model"])


def test_diverged_run_names_a_kept_healthy_checkpoint_and_retries_from_it(synthetic_root, ref, tmp_path, val):
    """Item 3: the loss blows up for 4 steps (finite), then turns NaN; KEEP_LAST 2 must not have pruned
    the checkpoint from before the blow-up, and the error says how to retry from it."""
    from vidrec.engine.trainer import NonFiniteError

    out = str(tmp_path / "run")
    t = _trainer(synthetic_root, out)
    forward = t.net.forward

    def diverging(x):
        y = forward(x)
        if not t.net.training:
            return y
        step = t.global_step + 1
        if step == 7:
            return y * float("nan")
        return y + 999.0 * y.detach() if 3 <= step <= 6 else y  # loss x1000, gradients unchanged

    t.net.forward = diverging
    with pytest.raises(NonFiniteError) as e:
        t.fit()
    msg = str(e.value)
    healthy = os.path.join(out, "checkpoints", "ckpt_e0000_i000002.pt")
    assert f"TRAIN.RESUME_FROM {healthy}" in msg and "intact" not in msg and "\n" not in msg
    assert os.path.isfile(healthy)  # kept although 2 newer checkpoints exist (KEEP_LAST 2)

    _train(synthetic_root, out, TRAIN__RESUME_FROM=healthy)  # the retry (here the "fix" is removing the fault)
    ckdir = os.path.join(out, "checkpoints")
    aside = [n for n in os.listdir(ckdir) if n.startswith("abandoned-")]
    assert len(aside) == 1 and sorted(os.listdir(os.path.join(ckdir, aside[0]))) == [
        "ckpt_e0001_i000000.pt", "ckpt_e0001_i000002.pt"]  # the diverged continuation: moved, not deleted
    assert _same_weights(_final(out), _final(ref))  # as if it had never diverged
    assert _records(out) == _records(ref)
    got, want = (ck.safe_load(os.path.join(d, "checkpoints", "best.pt")) for d in (out, ref))
    assert _same_weights(got["model"], want["model"])  # not the diverged branch's best.pt

    # Restarted with the same command line: continues the retried branch, does not go back again.
    _train(synthetic_root, out, TRAIN__RESUME_FROM=healthy)
    assert "was applied before" in _log(out)
    assert len([n for n in os.listdir(ckdir) if n.startswith("abandoned-")]) == 1
    assert _same_weights(_final(out), _final(ref))


def test_kill_before_best_write_leaves_no_stale_best(synthetic_root, tmp_path, monkeypatch):
    """Item 4: killed between the step checkpoint and the best.pt write of a new best (epoch 2 beats
    epoch 1): after the resume best.pt holds epoch 2, as the history says."""
    _install_val(monkeypatch, {1: 50.0, 2: 60.0})
    out = str(tmp_path / "run")
    real = ck.atomic_write_bytes
    best_writes = []

    def killed_at_second_best(path, data, **kw):
        if os.path.basename(path) == "best.pt":
            best_writes.append(path)
            if len(best_writes) == 2:
                raise Killed()
        return real(path, data, **kw)

    monkeypatch.setattr(ck, "atomic_write_bytes", killed_at_second_best)
    with pytest.raises(Killed):
        _train(synthetic_root, out, TEST__WEIGHTS="best")
    monkeypatch.setattr(ck, "atomic_write_bytes", real)
    assert ck.safe_load(os.path.join(out, "checkpoints", "best.pt"))["epoch"] == 1  # stale now
    _train(synthetic_root, out, TEST__WEIGHTS="best")
    final = ck.safe_load(os.path.join(out, "checkpoints", "ckpt_e0002_i000000.pt"))
    vals = [r for r in final["history"] if r["type"] == "val"]
    best_epoch = max(vals, key=lambda r: r["top1"])["epoch"]
    best = ck.safe_load(os.path.join(out, "checkpoints", "best.pt"))
    assert best_epoch == 2 and best["epoch"] == 2 and _same_weights(best["model"], final["model"])
    assert "using the best-validation weights (epoch 2)" in _log(out)
