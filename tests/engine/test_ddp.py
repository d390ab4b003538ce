"""Two CPU processes (gloo) give the same weights and eval metrics as one process
with the same global batch; a NaN on one rank stops both.

BatchNorm: per-rank batch statistics differ from the single-process ones by
design, and PyTorch's SyncBatchNorm runs on GPUs only, so the equivalence runs
with TRAIN.FREEZE_BN True (BN layers use their running statistics; their affine
parameters still train). Dropout is 0, so no RNG stream differs between layouts.
Data order and augmentation are identical because the sampler assigns each
global batch the same videos and per-sample seeds whatever the world size.
"""
import os
import socket
import sys
import traceback

import numpy as np
import torch

from vidrec.engine import checkpoint as ck

from .conftest import clean_mp_context, fork_loader_workers, tiny_cfg

OVERRIDES = dict(TRAIN__FREEZE_BN=True, MODEL__DROPOUT_RATE=0.0, DATA__RANDOM_FLIP=True, TRAIN__ACCUM_STEPS=2,
                 TRAIN__BATCH_SIZE=8, SOLVER__MAX_EPOCH=2, TRAIN__EVAL_PERIOD=1, TEST__ENABLE=True,
                 TEST__BATCH_SIZE=3, DATA__TEST_LIST="", SOLVER__BASE_LR=0.02)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child(rank, world, port, cfg_args, queue, poison_rank):
    fork_loader_workers()
    code = 0
    try:
        os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(port))
        from vidrec.engine import distributed as du
        from vidrec.engine.trainer import Trainer

        cfg = tiny_cfg(*cfg_args[0], **cfg_args[1])
        ctx = du.init_distributed(cfg)
        try:
            t = Trainer(cfg, ctx)
            if rank == poison_rank:
                forward = t.net.forward
                t.net.forward = lambda x: forward(x) * (float("nan") if t.global_step == 1 else 1.0)
            res = t.fit()
            queue.put((rank, "ok", res["test"]))
        finally:
            du.cleanup(ctx)
    except BaseException as e:  # noqa: BLE001
        queue.put((rank, type(e).__name__, str(e)))
        if type(e).__name__ != "NonFiniteError":
            traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        queue.close()
        queue.join_thread()  # os._exit would drop what the feeder thread has not sent yet
        os._exit(code)


def _launch(world, cfg_args, poison_rank=-1):
    ctx = clean_mp_context()
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_child, args=(r, world, port, cfg_args, queue, poison_rank)) for r in range(world)]
    for p in procs:
        p.start()
    results = {}
    for _ in procs:
        rank, kind, payload = queue.get(timeout=240)
        results[rank] = (kind, payload)
    for p in procs:
        p.join(timeout=60)
        assert not p.is_alive(), "a rank was left hanging"
    return results


def test_ddp_two_processes_match_single_process(synthetic_root, tmp_path):
    from vidrec.engine import train

    over = dict(OVERRIDES, DATA__TEST_LIST=os.path.join(synthetic_root, "test_odd.csv"))  # 11 videos: padding
    single_out, ddp_out = str(tmp_path / "single"), str(tmp_path / "ddp")
    single = train(tiny_cfg(synthetic_root, single_out, **over))
    results = _launch(2, ((synthetic_root, ddp_out), over))
    assert all(kind == "ok" for kind, _ in results.values()), results

    a = ck.safe_load(os.path.join(single_out, "model_final.safetensors"))
    b = ck.safe_load(os.path.join(ddp_out, "model_final.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5, msg=f"weights differ: {k}")

    za = np.load(os.path.join(single_out, "test_test", "scores.npz"))
    zb = np.load(os.path.join(ddp_out, "test_test", "scores.npz"))
    assert len(za["video_ids"]) == 11
    np.testing.assert_array_equal(za["video_ids"], zb["video_ids"])  # padding duplicate dropped
    np.testing.assert_array_equal(za["labels"], zb["labels"])
    np.testing.assert_allclose(zb["scores"], za["scores"], rtol=1e-4, atol=1e-5)
    mt, ms = results[0][1], single["test"]
    assert mt["num_videos"] == ms["num_videos"] == 11
    for key in ("top1", "top5", "mean_class_acc", "clip_top1"):
        assert abs(mt[key] - ms[key]) < 1e-6, key
    assert results[1][1] == mt  # every rank returns the same gathered metrics


def test_nan_on_one_rank_stops_all_ranks(synthetic_root, tmp_path):
    over = dict(OVERRIDES, TEST__ENABLE=False, TRAIN__EVAL_PERIOD=0)
    results = _launch(2, ((synthetic_root, str(tmp_path)), over), poison_rank=1)
    for rank in (0, 1):
        kind, msg = results[rank]
        assert kind == "NonFiniteError", results
        assert "loss (in 2 of 4 micro-batches across 2 process(es))" in msg and "iteration 2/2" in msg, msg
