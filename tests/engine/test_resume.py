"""Kill a (forked) training process at arbitrary points (SIGKILL, including half-way through a checkpoint
write) and resume: the final weights and optimizer state must be bitwise identical
to an uninterrupted run."""
import json
import os
import random
import signal
import sys
import time

import pytest
import torch

from vidrec.engine import checkpoint as ck

from .conftest import clean_mp_context, fork_loader_workers, tiny_cfg


# Dropout, flips and a worker process: every random stream is exercised.
_OVERRIDES = dict(MODEL__DROPOUT_RATE=0.5, DATA__RANDOM_FLIP=True, DATA_LOADER__NUM_WORKERS=1,
                  TRAIN__CHECKPOINT_ITERS=1, TRAIN__KEEP_LAST=2, TEST__ENABLE=False, TRAIN__EVAL_PERIOD=1,
                  LOG_PERIOD=1)


def _child(root, out, fault, overrides=_OVERRIDES):
    """Training process (see ``clean_mp_context``)."""
    import traceback

    fork_loader_workers()
    code = 0
    try:
        if fault:
            os.environ["VIDREC_FAULT"] = fault
        else:
            os.environ.pop("VIDREC_FAULT", None)
        from vidrec.engine import train

        train(tiny_cfg(root, out, **overrides))
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _run(root, out, fault=None, kill_after=None, overrides=_OVERRIDES):
    proc = clean_mp_context().Process(target=_child, args=(root, out, fault, overrides))
    proc.start()
    proc.join(timeout=kill_after if kill_after is not None else 300)
    if proc.is_alive():
        proc.kill()
        proc.join()
    return proc.exitcode, f"(exit code {proc.exitcode}; output above)"


def _final_state(out):
    s = ck.safe_load(os.path.join(out, "checkpoints", ck.checkpoint_name(2, 0)))
    return s


def test_kill_anywhere_and_resume_is_bitwise_exact(synthetic_root, tmp_path):
    ref_out, out = str(tmp_path / "ref"), str(tmp_path / "killed")
    t0 = time.time()
    from vidrec.engine import train

    train(tiny_cfg(synthetic_root, ref_out, **_OVERRIDES))  # in this process: later forks start warm
    ref_seconds = time.time() - t0

    seed = int(os.environ.get("VIDREC_TEST_SEED", time.time_ns() % 10_000))
    rnd = random.Random(seed)
    # 8 optimizer steps in all (2 epochs x 4); checkpoints after every step.
    plan = [("step:%d" % rnd.randint(1, 3), None),                  # killed right after a step
            ("ckpt_write:%d" % rnd.randint(1, 2), None),            # killed half-way through a checkpoint write
            (None, rnd.uniform(0.3, 0.8) * ref_seconds),            # killed from outside, at a random moment
            ("step:%d" % rnd.randint(6, 8), None)]
    kills = 0
    saw_temp = False
    for fault, delay in plan:
        rc, log = _run(synthetic_root, out, fault=fault, kill_after=delay)
        assert rc in (0, -signal.SIGKILL), f"seed {seed}, fault {fault}: rc {rc}\n{log}"
        kills += rc == -signal.SIGKILL
        ckdir = os.path.join(out, "checkpoints")
        if os.path.isdir(ckdir):
            saw_temp |= any(n.endswith(".tmp") for n in os.listdir(ckdir))
        if rc == 0:
            break
    for _ in range(3):  # finish
        if rc == 0:
            break
        rc, log = _run(synthetic_root, out)
    assert rc == 0, log
    assert kills >= 2, f"seed {seed}: only {kills} kills landed"
    assert saw_temp, f"seed {seed}: the mid-write kill left no temp file to ignore"
    assert "resumed from" in open(os.path.join(out, "log.txt")).read()
    # Every restart took the run folder's lock although a SIGKILLed run held it: the kernel released it.
    assert os.path.isfile(os.path.join(out, ".lock"))

    ref, got = _final_state(ref_out), _final_state(out)
    assert ref["global_step"] == got["global_step"] == 8
    for k, v in ref["model"].items():
        assert torch.equal(v, got["model"][k]), f"seed {seed}: model tensor {k} differs after resume"
    for pid, st in ref["optimizer"]["state"].items():
        assert torch.equal(st["momentum_buffer"], got["optimizer"]["state"][pid]["momentum_buffer"]), pid
    timings = ("seconds", "data_wait_seconds")
    strip = lambda h: [{k: v for k, v in r.items() if k not in timings} for r in h]  # noqa: E731
    assert strip(ref["history"]) == strip(got["history"])  # same losses, accuracies, val metrics
    # metrics.jsonl reads as if the run had never stopped: no record of a redone step twice.
    timings += ("time",)
    records = [strip(json.loads(line) for line in open(os.path.join(d, "metrics.jsonl"))) for d in (ref_out, out)]
    assert len(records[0]) == 8 + 2 + 2 and records[0] == records[1], f"seed {seed}"
    for name in ("model_final.safetensors",):
        a, b = ck.safe_load(os.path.join(ref_out, name)), ck.safe_load(os.path.join(out, name))
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_two_clips_per_video_resume_is_bitwise_exact(synthetic_root, tmp_path):
    """DATA.TRAIN_CLIPS_PER_VIDEO 2: 8 clips per step are 4 videos, 32 videos give 8 steps per epoch;
    killed mid-epoch twice, resumed to the same weights. A mid-epoch checkpoint is refused with another k."""
    from vidrec.engine import train
    from vidrec.engine.trainer import Trainer
    from vidrec.engine import distributed as du

    over = dict(_OVERRIDES, DATA__TRAIN_CLIPS_PER_VIDEO=2, TRAIN__CHECKPOINT_ITERS=3, TRAIN__EVAL_PERIOD=2)
    ref_out, out = str(tmp_path / "ref"), str(tmp_path / "killed")
    train(tiny_cfg(synthetic_root, ref_out, **over))
    assert "8 iterations/epoch, 8 clips/step" in open(os.path.join(ref_out, "log.txt")).read()
    for fault in ("step:4", "step:13"):  # killed after steps 4 and 13: resumed from the checkpoints of steps 3 and 11
        rc, log = _run(synthetic_root, out, fault=fault, overrides=over)
        assert rc == -signal.SIGKILL, log
    cfg = tiny_cfg(synthetic_root, out, **dict(over, DATA__TRAIN_CLIPS_PER_VIDEO=1))
    with pytest.raises(ck.CheckpointError, match="mid-epoch with DATA.TRAIN_CLIPS_PER_VIDEO 2, but this run has 1"):
        Trainer(cfg, du.init_distributed(cfg))
    with pytest.raises(ValueError, match=r"BATCH_SIZE 8 \(global, in clips\) .* x DATA.TRAIN_CLIPS_PER_VIDEO \(3\)"):
        Trainer(tiny_cfg(synthetic_root, str(tmp_path / "k3"), DATA__TRAIN_CLIPS_PER_VIDEO=3), du.init_distributed(cfg))
    rc, log = _run(synthetic_root, out, overrides=over)
    assert rc == 0, log
    assert open(os.path.join(out, "log.txt")).read().count("resumed from") == 2
    ref, got = _final_state(ref_out), _final_state(out)
    assert ref["global_step"] == got["global_step"] == 16
    assert all(torch.equal(v, got["model"][k]) for k, v in ref["model"].items())
    for pid, st in ref["optimizer"]["state"].items():
        assert torch.equal(st["momentum_buffer"], got["optimizer"]["state"][pid]["momentum_buffer"]), pid
    timings = ("seconds", "data_wait_seconds")
    assert [{k: v for k, v in r.items() if k not in timings} for r in ref["history"]] == \
        [{k: v for k, v in r.items() if k not in timings} for r in got["history"]]
