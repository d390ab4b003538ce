#!/usr/bin/env python
"""End to end: training iterations/s of the demo config, and where the time goes.

Trains the demo model (configs/demo_synthetic.yaml) on the synthetic motion
data for a few epochs with the default loader workers (DATA_LOADER.NUM_WORKERS
auto) and with 0, 1 and 2 in the same run, then at the default with a deeper
prefetch (DATA_LOADER.PREFETCH_FACTOR 4), the other layout (MEMORY_FORMAT
contiguous) and DATA.RESIZE_ON_DEVICE, and reports iterations/s (the last
epoch, warm), the share of the epoch spent waiting for data, and the speed
against the in-process loader (0 workers).

  python benchmarks/end_to_end.py [--epochs 2] [--workers auto 0 1 2] [--per-class 150]
"""
import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from vidrec.utils.cpus import loader_workers  # noqa: E402


def run(root: dict, out: str, workers, epochs: int, opts, label: str = "") -> dict:
    from vidrec.config import load_config
    from vidrec.engine import train

    cfg = load_config("demo_synthetic.yaml", [
        "DATA.PATH_TO_DATA_DIR", root["root"], "DATA.TRAIN_LIST", root["train"], "DATA.VAL_LIST", "",
        "DATA.TEST_LIST", root["test"], "TEST.ENABLE", "False", "TEST.WEIGHTS", "final", "TRAIN.EVAL_PERIOD", "0",
        "SOLVER.MAX_EPOCH", str(epochs), "DATA_LOADER.NUM_WORKERS", str(workers),
        "DATA_LOADER.PERSISTENT_WORKERS", "True", "OUTPUT_DIR", out, "LOG_PERIOD", "1000", *opts])
    t = time.perf_counter()
    train(cfg)
    wall = time.perf_counter() - t
    epochs_rec = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    last = [r for r in epochs_rec if r.get("type") == "train_epoch"][-1]
    if workers == "auto":
        label = label or f"default: auto ({loader_workers('auto')[0]} workers)"
    return {"setting": label or f"{workers} workers", "workers": workers, "epoch_seconds": last["seconds"],
            "data_wait_seconds": last["data_wait_seconds"], "wall_seconds": wall}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--workers", nargs="+", default=["auto", "0", "1", "2"], help="counts, or auto (the default)")
    p.add_argument("--per-class", type=int, default=150, help="synthetic training videos per class (the demo's)")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE")
    args = p.parse_args(argv)
    import logging

    from vidrec.config import load_config
    from vidrec.data import make_synthetic_dataset

    logging.disable(logging.INFO)
    cfg = load_config("demo_synthetic.yaml", args.opts)
    tmp = tempfile.mkdtemp(prefix="vidrec_e2e_")
    data = make_synthetic_dataset(os.path.join(tmp, "data"), num_classes=cfg.MODEL.NUM_CLASSES,
                                  videos_per_class=(args.per_class, 2, 2), size=(48, 48), num_frames=32)
    batch = cfg.TRAIN.BATCH_SIZE
    iters_per_epoch = args.per_class * cfg.MODEL.NUM_CLASSES // batch
    rows = [run(data, os.path.join(tmp, f"w{w}"), w if w == "auto" else int(w), args.epochs, args.opts)
            for w in args.workers]
    variants = {"default, prefetch 4 batches": ["DATA_LOADER.PREFETCH_FACTOR", "4"],
                "default, contiguous layout": ["MEMORY_FORMAT", "contiguous"],
                "default, resize on device": ["DATA.RESIZE_ON_DEVICE", "True"]}
    rows += [run(data, os.path.join(tmp, f"v{i}"), "auto", args.epochs, args.opts + extra, label)
             for i, (label, extra) in enumerate(variants.items())]
    zero = [r for r in rows if r["workers"] == 0]
    base = (zero or rows)[0]["epoch_seconds"]
    print(f"demo config ({cfg.MODEL.ARCH} x{cfg.MODEL.WIDTH_MULT}, batch {batch}, "
          f"{cfg.DATA.NUM_FRAMES}x{cfg.DATA.TRAIN_CROP_SIZE}px clips, {cfg.NUM_THREADS} torch thread(s)), "
          f"{iters_per_epoch} iterations per epoch, last of {args.epochs} epochs")
    print(f"{'setting':<30} {'iters/s':>8} {'clips/s':>8} {'waiting for data':>17} {'vs 0 workers':>13}")
    for r in rows:
        s = r["epoch_seconds"]
        print(f"{r['setting']:<30} {iters_per_epoch / s:>8.2f} {iters_per_epoch * batch / s:>8.1f} "
              f"{r['data_wait_seconds'] / s:>16.0%} {base / s:>12.2f}x")
    return rows


if __name__ == "__main__":
    main()
