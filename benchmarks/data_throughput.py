#!/usr/bin/env python
"""Data pipeline throughput on the real sample videos (not a test).

Measures, with the same DataLoader settings:
  * train pipeline clips/s vs the raw decoder fetching exactly the same frames, and with
    DATA.TRAIN_CLIPS_PER_VIDEO 2 (half the videos, 2 clips from one decode each) vs that one-clip raw decode,
  * test pipeline videos/s (10x3 views) vs the raw decoder fetching the same frames,
  (the pipeline includes turning its uint8 batches into normalised float model
  input, which the engine does on the model's device: here the CPU; test batches
  are decoded unions that the evaluator's ViewCutter cuts into the 30 views),
  * frames decoded per 30-view video: union of the views (what the dataset does)
    vs decoding every view separately, and the time of each;
  * per decoder backend (decord, PyAV, TorchCodec: those available), the raw decoder on
    the same files and frames: train clips/s (16x4) and test videos/s (30 views, the
    union of their frames), against PyAV, and "same frames": the largest mean absolute
    difference (0-255) of any frame from PyAV's (0 = the same pixels).
Ratios are against the baseline measured in the same run; medians over repeats.

    python benchmarks/data_throughput.py [--videos ../shared/videos] [--workers 2] [--repeats 3]
        [--synthetic-720p N [--synthetic-frames 150]] [--sections pipeline,views,backends]

``--synthetic-720p N`` writes N 1280x720 H.264 videos (30 fps, a key frame every 2 s,
x264 "veryfast" with B-frames, a panning texture) to a temporary folder and measures
those instead of ``--videos``.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from vidrec.config.defaults import get_cfg  # noqa: E402
from vidrec.data import VideoError, backends, collate_test, probe, read_frames  # noqa: E402
from vidrec.data.datasets import VideoDataset, collate_train  # noqa: E402
from vidrec.data.sampling import eval_clips, train_clip  # noqa: E402
from vidrec.data.transforms import ViewCutter, to_model_input  # noqa: E402
from vidrec.utils.device import memory_format  # noqa: E402


def train_ids(d, seed):
    """The frame ids VideoDataset ``d``'s train item plans for ``seed`` (a callable: num_frames -> ids)."""
    return lambda n: train_clip(n, d.num_frames, d.rate, np.random.default_rng(seed), d.short)


def test_ids(d):
    return lambda n: np.unique(eval_clips(n, d.num_frames, d.rate, d.num_views, d.short))


class RawTrain(Dataset):
    """Decoder only: the frames VideoDataset's train item would decode for the same key
    (with the dataset's decoders, or only ``backend``)."""

    def __init__(self, ds, backend=None):
        self.ds = ds
        self.order, self.fallback = ([backend], False) if backend else (list(ds.decoders), True)

    def __len__(self):
        return len(self.ds)

    def read(self, path, ids):
        return read_frames(path, ids, backend=self.order, fallback=self.fallback, partial=self.ds.partial)[0]

    def __getitem__(self, key):
        i, seed = key
        return self.read(self.ds.paths[i], train_ids(self.ds, seed))


class RawTest(RawTrain):
    def __getitem__(self, i):
        return self.read(self.ds.paths[i], test_ids(self.ds))


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
    p.add_argument("--synthetic-720p", type=int, default=0, metavar="N",
                   help="measure N generated 1280x720 H.264 videos instead of --videos")
    p.add_argument("--synthetic-frames", type=int, default=150, help="frames per generated video")
    p.add_argument("--sections", default="pipeline,views,backends",
                   help="comma-separated: pipeline (loaders vs raw), views (union vs each view), backends")
    a = p.parse_args(argv)
    sections = set(a.sections.split(","))
    torch.set_num_threads(1)
    if a.synthetic_720p:
        with tempfile.TemporaryDirectory(prefix="vidrec_720p_") as tmp:
            t = time.perf_counter()
            write_720p(Path(tmp), a.synthetic_720p, a.synthetic_frames)
            print(f"wrote {a.synthetic_720p} 1280x720 H.264 videos of {a.synthetic_frames} frames "
                  f"({time.perf_counter() - t:.0f} s)")
            a.videos = tmp
            return run(a, sections)
    return run(a, sections)


def write_720p(folder: Path, count: int, frames: int, fps: int = 30, size=(720, 1280), gop: int = 0) -> list:
    """H.264 videos (default 1280x720) of a texture panning across the frame (x264 veryfast: B-frames,
    a key frame every ``gop`` frames, default 2 s), named ``synthetic_<height>p_<i>.mp4``; -> their paths."""
    import av

    (h, w), m = size, 8 * frames + 64
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h + m, 0:w + m].astype(np.float32)
    paths = []
    for v in range(count):
        tex = (110 + 60 * np.sin(xx[..., None] / (23.0 + 7 * v) + np.arange(3)) * np.cos(yy[..., None] / 31.0)
               + rng.normal(0, 12, (h + m, w + m, 1))).clip(0, 255).astype(np.uint8)
        paths.append(str(folder / f"synthetic_{h}p_{v}.mp4"))
        with av.open(paths[-1], "w") as out:
            s = out.add_stream("libx264", rate=fps, options={"preset": "veryfast", "crf": "23", "g": str(gop or 2 * fps)})
            s.height, s.width, s.pix_fmt = h, w, "yuv420p"
            for i in range(frames):
                dy, dx = (3 * i) % m, (8 * i) % m  # pan right and down
                img = np.ascontiguousarray(tex[dy:dy + h, dx:dx + w])
                out.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
            out.mux(s.encode())
    return paths


def run(a, sections):
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

    print(f"\n{len(paths)} videos ({', '.join(Path(x).name for x in paths)}), {a.workers} workers, "
          f"median of {a.repeats}")
    if "pipeline" in sections:
        pipeline_rows(a, cfg, tr, te, keys, loader, kw, rows)
    if "views" in sections:
        views_table(a, paths, te)
    if "backends" in sections:
        backend_table(a, paths, cfg, loader)


def pipeline_rows(a, cfg, tr, te, keys, loader, kw, rows):
    paths = tr.paths
    t_raw = median_time(lambda: timed(loader(RawTrain(tr), keys))[0], a.repeats)
    cpu, mean, std = torch.device("cpu"), cfg.DATA.MEAN, cfg.DATA.STD
    t_pipe = median_time(lambda: timed(loader(tr, keys), lambda b: to_model_input(b[0][None], cpu, mean, std))[0],
                         a.repeats)
    rows.append(("train clips/s (16x4, 224 crop)", len(keys) / t_raw, len(keys) / t_pipe))
    # DATA.TRAIN_CLIPS_PER_VIDEO 2: the same videos, each decoded once for 2 clips (own starts, or one shared
    # start: DATA.TRAIN_CLIPS_SHARE_FRAMES); vs the one-clip raw decode.
    for share, name in ((False, "train clips/s, 2 clips per video"), (True, "  the same, sharing one start")):
        k2cfg = cfg.clone()
        k2cfg.DATA.TRAIN_CLIPS_PER_VIDEO, k2cfg.DATA.TRAIN_CLIPS_SHARE_FRAMES = 2, share
        k2 = VideoDataset(paths, [0] * len(paths), k2cfg, train=True)
        t_k2 = median_time(lambda: timed(DataLoader(k2, batch_size=1, sampler=keys, collate_fn=collate_train, **kw),
                                         lambda b: to_model_input(b[0], cpu, mean, std))[0], a.repeats)
        rows.append((name, len(keys) / t_raw, 2 * len(keys) / t_k2))
    vids = list(range(len(paths)))
    t_raw = median_time(lambda: timed(loader(RawTest(te), vids))[0], a.repeats)
    # As the evaluator does it: views cut from each union into float input (its layout and chunks).
    cut = ViewCutter(cpu, mean, std, memory_format(cfg.MEMORY_FORMAT, cpu), cfg.TEST.CLIPS_PER_FORWARD)
    t_pipe = median_time(lambda: timed(DataLoader(te, batch_size=1, collate_fn=collate_test, **kw),
                                       lambda b: list(cut(b["unions"])))[0], a.repeats)
    rows.append(("test videos/s (10x3 views, 256)", len(vids) / t_raw, len(vids) / t_pipe))
    # Without cutting the views and the float conversion (on a GPU they run there): what the workers deliver.
    t_loader = median_time(lambda: timed(DataLoader(te, batch_size=1, collate_fn=collate_test, **kw))[0], a.repeats)
    rows.append(("  the same, uint8 views only", len(vids) / t_raw, len(vids) / t_loader))

    print(f"\n| {'measure':34s} | raw decoder | pipeline | pipeline / raw |")
    print(f"|{'-' * 36}|-------------|----------|----------------|")
    for name, raw, pipe in rows:
        print(f"| {name:34s} | {raw:11.2f} | {pipe:8.2f} | {pipe / raw:14.2f} |")


def views_table(a, paths, te):
    print(f"\n| {'video':24s} | frames: union | each view | saved | time union (s) | time per view (s) | speed-up |")
    print(f"|{'-' * 26}|---------------|-----------|-------|----------------|-------------------|----------|")
    for pth in paths:
        n = probe(pth)["num_frames"]
        clips = eval_clips(n, te.num_frames, te.rate, te.num_views, te.short)
        per_view = [c for c in clips for _ in range(te.num_crops)]  # every spatial crop decoded again
        uniq = np.unique(clips)
        t_u = median_time(lambda: _t(lambda: read_frames(pth, uniq)), a.repeats)
        t_v = median_time(lambda: _t(lambda: [read_frames(pth, c) for c in per_view]), 1)
        total = sum(len(c) for c in per_view)
        print(f"| {Path(pth).name:24s} | {len(uniq):13d} | {total:9d} | {total / len(uniq):4.1f}x | "
              f"{t_u:14.3f} | {t_v:17.3f} | {t_v / t_u:7.1f}x |")


def backend_table(a, paths, cfg, loader):
    """Each available backend alone (no fallback) on the files that none of them refuses or fails on."""
    from vidrec.data.video_index import index_video

    names = [b for b in backends.names() if not backends.backend(b).unavailable()]
    for b in backends.names():
        if b not in names:
            print(f"\n{b}: not measured: {backends.backend(b).unavailable()}")
    same = []
    for pth in paths:
        why = {b: backends.backend(b).refuses(index_video(pth)) for b in names}
        for b in names:
            if not why[b]:
                try:
                    read_frames(pth, [0], backend=b, fallback=False)
                except VideoError as e:
                    why[b] = f"fails: {e.reason}"
        left_out = {b: w for b, w in why.items() if w}
        if left_out:
            print(f"left out {Path(pth).name}: " + "; ".join(f"{b}: {w}" for b, w in left_out.items()))
        else:
            same.append(pth)
    if not same or "pyav" not in names:
        print("no file every backend reads: no backend table")
        return
    tr = VideoDataset(same, [0] * len(same), cfg, train=True)
    te = VideoDataset(same, [0] * len(same), cfg, train=False)
    keys = [(i % len(same), 1000 + i) for i in range(a.train_clips)]
    vids = list(range(len(same)))
    times = {b: ([], []) for b in names}
    for _ in range(a.repeats):  # backends interleaved, so a change in the machine's load hits them alike
        for b in names:
            times[b][0].append(timed(loader(RawTrain(tr, b), keys))[0])
            times[b][1].append(timed(loader(RawTest(te, b), vids))[0])
    res = {b: (len(keys) / statistics.median(t[0]), len(vids) / statistics.median(t[1])) for b, t in times.items()}
    diff = same_frames(names, tr, te, keys)
    n_frames = int(te.num_views * te.num_crops)
    print(f"\nraw decoder per backend, the same frames of {len(same)} videos "
          f"({', '.join(Path(x).name for x in same)}): {len(keys)} train clips ({tr.num_frames}x{tr.rate}), "
          f"every test video's {n_frames} views (union of frames)\n")
    print("| backend    | train clips/s | vs PyAV | test videos/s | vs PyAV | same frames: max mean abs diff vs PyAV |")
    print("|------------|---------------|---------|---------------|---------|----------------------------------------|")
    p_train, p_test = res["pyav"]
    for b in names:
        c, v = res[b]
        print(f"| {b:10s} | {c:13.2f} | {c / p_train:6.2f}x | {v:13.2f} | {v / p_test:6.2f}x | {diff[b]:38.2f} |")


def same_frames(names, tr, te, keys) -> dict:
    """backend -> the largest mean absolute difference (0-255) of a frame it reads from PyAV's, over the
    test unions and the first 8 train clips of the table (PyAV decodes each once)."""
    reads = [(pth, test_ids(te)) for pth in te.paths] + [(tr.paths[i], train_ids(tr, seed)) for i, seed in keys[:8]]
    worst = dict.fromkeys(names, 0.0)
    for pth, ids in reads:
        ref = read_frames(pth, ids, backend="pyav", fallback=False)[0].float()
        for b in names:
            if b != "pyav":
                x = read_frames(pth, ids, backend=b, fallback=False)[0].float()
                worst[b] = max(worst[b], float((x - ref).abs().flatten(1).mean(1).max()))
    return worst


def _t(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
