#!/usr/bin/env python
"""Data pipeline throughput on the real sample videos (not a test).

Measures, with the same DataLoader settings:
  * train pipeline clips/s vs the raw decoder fetching exactly the same frames,
  * test pipeline videos/s (10x3 views) vs the raw decoder fetching the same frames,
  (the pipeline includes turning its uint8 batches into normalised float model
  input, which the engine does on the model's device: here the CPU),
  * frames decoded per 30-view video: union of the views (what the dataset does)
    vs decoding every view separately, and the time of each.
Ratios are against the baseline measured in the same run; medians over repeats.

    python benchmarks/data_throughput.py [--videos ../shared/videos] [--workers 2] [--repeats 3]
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from vidrec.config.defaults import get_cfg  # noqa: E402
from vidrec.data import VideoError, collate_test, probe, read_frames  # noqa: E402
from vidrec.data.datasets import VideoDataset  # noqa: E402
from vidrec.data.sampling import test_clips, train_clip  # noqa: E402
from vidrec.data.transforms import to_model_input  # noqa: E402


class RawTrain(Dataset):
    """Decoder only: the frames VideoDataset's train item would decode for the same key."""

    def __init__(self, ds):
        self.ds = ds

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, key):
        i, seed = key
        rng, d = np.random.default_rng(seed), self.ds
        return read_frames(d.paths[i], lambda n: train_clip(n, d.num_frames, d.rate, rng, d.short), d.backend)[0]


class RawTest(RawTrain):
    def __getitem__(self, i):
        d = self.ds
        return read_frames(d.paths[i], lambda n: np.unique(test_clips(n, d.num_frames, d.rate, d.num_views, d.short)),
                           d.backend)[0]


def timed(loader, prepare=lambda batch: batch):
    t = time.perf_counter()
    n = sum(1 for batch in loader if prepare(batch) is not None)
    return time.perf_counter() - t, n


def median_time(fn, repeats):
    return statistics.median(fn() for _ in range(repeats))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", default=os.environ.get("VIDREC_SAMPLE_VIDEOS",
                                                      str(Path(__file__).resolve().parents[2] / "shared" / "videos")))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--train-clips", type=int, default=24, help="clips per train measurement")
    a = p.parse_args(argv)
    torch.set_num_threads(1)

    paths = []
    for f in sorted(Path(a.videos).glob("*")):
        if f.suffix.lower() in (".mp4", ".avi", ".mkv", ".mov", ".webm"):
            try:
                info = probe(f)
                if info["num_frames"] >= 64:  # long enough for a 16x4 clip
                    paths.append(str(f))
            except VideoError as e:
                print(f"skipping {e}")
    if not paths:
        sys.exit(f"no usable videos in {a.videos}")
    cfg = get_cfg()  # Kinetics defaults: 16x4 clips, jitter [256, 320], crop 224, test 10x3 at 256
    tr = VideoDataset(paths, [0] * len(paths), cfg, train=True)
    te = VideoDataset(paths, [0] * len(paths), cfg, train=False)
    keys = [(i % len(paths), 1000 + i) for i in range(a.train_clips)]
    kw = dict(num_workers=a.workers, persistent_workers=False)
    rows = []

    def loader(ds, sampler=None, **extra):
        return DataLoader(ds, batch_size=None, sampler=sampler, **kw, **extra)

    t_raw = median_time(lambda: timed(loader(RawTrain(tr), keys))[0], a.repeats)
    cpu, mean, std = torch.device("cpu"), cfg.DATA.MEAN, cfg.DATA.STD
    t_pipe = median_time(lambda: timed(loader(tr, keys), lambda b: to_model_input(b[0][None], cpu, mean, std))[0],
                         a.repeats)
    rows.append(("train clips/s (16x4, 224 crop)", len(keys) / t_raw, len(keys) / t_pipe))
    vids = list(range(len(paths)))
    t_raw = median_time(lambda: timed(loader(RawTest(te), vids))[0], a.repeats)
    t_pipe = median_time(lambda: timed(DataLoader(te, batch_size=1, collate_fn=collate_test, **kw),
                                       lambda b: to_model_input(b["clips"], cpu, mean, std))[0], a.repeats)
    rows.append(("test videos/s (10x3 views, 256)", len(vids) / t_raw, len(vids) / t_pipe))
    # Without the float conversion (on a GPU it runs there): what the workers deliver.
    t_loader = median_time(lambda: timed(DataLoader(te, batch_size=1, collate_fn=collate_test, **kw))[0], a.repeats)
    rows.append(("  the same, uint8 views only", len(vids) / t_raw, len(vids) / t_loader))

    print(f"\n{len(paths)} videos ({', '.join(Path(x).name for x in paths)}), {a.workers} workers, "
          f"median of {a.repeats}\n")
    print(f"| {'measure':34s} | raw decoder | pipeline | pipeline / raw |")
    print(f"|{'-' * 36}|-------------|----------|----------------|")
    for name, raw, pipe in rows:
        print(f"| {name:34s} | {raw:11.2f} | {pipe:8.2f} | {pipe / raw:14.2f} |")

    print(f"\n| {'video':24s} | frames: union | each view | saved | time union (s) | time per view (s) | speed-up |")
    print(f"|{'-' * 26}|---------------|-----------|-------|----------------|-------------------|----------|")
    for pth in paths:
        n = probe(pth)["num_frames"]
        clips = test_clips(n, te.num_frames, te.rate, te.num_views, te.short)
        per_view = [c for c in clips for _ in range(te.num_crops)]  # every spatial crop decoded again
        uniq = np.unique(clips)
        t_u = median_time(lambda: _t(lambda: read_frames(pth, uniq)), a.repeats)
        t_v = median_time(lambda: _t(lambda: [read_frames(pth, c) for c in per_view]), 1)
        total = sum(len(c) for c in per_view)
        print(f"| {Path(pth).name:24s} | {len(uniq):13d} | {total:9d} | {total / len(uniq):4.1f}x | "
              f"{t_u:14.3f} | {t_v:17.3f} | {t_v / t_u:7.1f}x |")


def _t(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
