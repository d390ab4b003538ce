#!/usr/bin/env python
"""Train clips/s on original videos vs their ``vidrec prepare`` copies, and the disk saved (not a test).

Generates ``--count`` 1280x720 and 1920x1080 H.264 sources (``data_throughput.write_720p``: x264
veryfast, B-frames, a key frame every 2 s, a panning texture), takes the real sample videos
(``--videos``, those with a 16x4 clip's 64 frames), prepares every set at each ``--short-sides``
with the default settings, and measures train clips/s: Kinetics defaults (16x4 clips, short-side
jitter 256-320, 224 crop), VideoDataset through a DataLoader with ``--workers`` workers, the same
keys on the originals and the copies, interleaved, median of ``--repeats``.

    python benchmarks/prepare_speed.py [--count 2] [--frames 150] [--clips 16] [--repeats 1]
        [--videos ../shared/videos] [--keyint-sweep 8,16,32,64,250] [--work DIR]

``--keyint-sweep`` adds a table of clips/s and size against the key frame interval (720p set, first
short side). ``--work DIR`` keeps the generated sources there for the next run (copies are redone).
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from data_throughput import write_720p  # noqa: E402
from vidrec.config.defaults import get_cfg  # noqa: E402
from vidrec.data import VideoError, probe  # noqa: E402
from vidrec.data.datasets import VideoDataset  # noqa: E402
from vidrec.data.inputs import videos_under  # noqa: E402
from vidrec.data.prepare import Settings, prepare_videos  # noqa: E402

SIZES = {"720p": (720, 1280), "1080p": (1080, 1920)}


def default_videos() -> str:
    return os.environ.get("VIDREC_SAMPLE_VIDEOS", str(Path(__file__).resolve().parents[2] / "shared" / "videos"))


def long_enough(paths):
    """The videos that decode and hold a 16x4 clip (64 frames), as data_throughput.py picks them."""
    keep = []
    for p in paths:
        try:
            if probe(p)["num_frames"] >= 64:
                keep.append(p)
        except VideoError as e:
            print(f"skipping {e}")
    return keep


def source_sets(a, work: Path) -> dict:
    sets = {}
    for name, size in SIZES.items():
        folder = work / f"{name}_{a.frames}f"
        folder.mkdir(parents=True, exist_ok=True)
        paths = sorted(str(p) for p in folder.glob("*.mp4"))
        if len(paths) != a.count:
            t = time.perf_counter()
            paths = write_720p(folder, a.count, a.frames, size=size)
            print(f"wrote {a.count} {size[1]}x{size[0]} H.264 videos of {a.frames} frames "
                  f"({time.perf_counter() - t:.0f} s)")
        sets[name] = paths
    if a.videos and os.path.isdir(a.videos):
        samples = long_enough(videos_under(a.videos))
        if samples:
            sets["samples"] = samples
    else:
        print(f"no sample videos at {a.videos!r}: generated sources only")
    return sets


def prepare_set(paths, out: Path, settings: Settings, workers: int):
    """-> (copies, seconds). Copies are redone (the folder is emptied) so the time is the real one."""
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    res = prepare_videos([(p, os.path.basename(p)) for p in paths], str(out), settings, workers, progress=False)
    seconds = time.perf_counter() - t
    failed = [r for r in res["videos"] if r["status"] == "failed"]
    for r in failed:
        print(f"prepare failed: {r['source']}: {r['reason']}")
    return [r["output"] for r in res["videos"] if r["status"] != "failed"], seconds


def clips_per_s(paths, cfg, clips: int, workers: int) -> float:
    ds = VideoDataset(paths, [0] * len(paths), cfg, train=True)
    keys = [(i % len(paths), 1000 + i) for i in range(clips)]
    t = time.perf_counter()
    for _ in DataLoader(ds, batch_size=None, sampler=keys, num_workers=workers):
        pass
    return clips / (time.perf_counter() - t)


def measure(variants: dict, cfg, a) -> dict:
    """name -> median clips/s; every variant once per repeat (a change in the machine's load hits all alike)."""
    rates = {k: [] for k in variants}
    for _ in range(a.repeats):
        for k, paths in variants.items():
            rates[k].append(clips_per_s(paths, cfg, a.clips, a.workers))
    return {k: statistics.median(v) for k, v in rates.items()}


def mb(paths) -> float:
    return sum(os.path.getsize(p) for p in paths) / 1e6


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=2, help="generated videos per size (720p, 1080p)")
    p.add_argument("--frames", type=int, default=150, help="frames per generated video (30 fps)")
    p.add_argument("--short-sides", default="320,256", help="comma-separated short sides to prepare at")
    p.add_argument("--videos", default=default_videos(), help="real sample videos ('' for none)")
    p.add_argument("--clips", type=int, default=16, help="train clips per measurement")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers, and prepare processes")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--keyint-sweep", default="", metavar="K,K,...", help="also measure these key frame intervals")
    p.add_argument("--work", default="", help="folder for the sources and copies (default: a temporary one)")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    if a.work:
        return run(a, Path(a.work))
    with tempfile.TemporaryDirectory(prefix="vidrec_prepare_") as tmp:
        return run(a, Path(tmp))


def run(a, work: Path):
    cfg = get_cfg()  # Kinetics defaults: 16x4 clips, jitter [256, 320], crop 224
    sides = [int(s) for s in a.short_sides.split(",")]
    sets = source_sets(a, work)
    variants, prep = {}, {}
    for name, paths in sets.items():
        variants[(name, "original")] = paths
        for side in sides:
            out = work / f"prepared_{side}" / name
            variants[(name, side)], prep[(name, side)] = prepare_set(paths, out, Settings(short_side=side), a.workers)
    rate = measure(variants, cfg, a)
    d, data = Settings(), cfg.DATA
    if "samples" in sets:
        print("samples: " + ", ".join(os.path.basename(x) for x in sets["samples"]))
    print(f"\ntrain clips/s ({data.NUM_FRAMES}x{data.SAMPLING_RATE}, jitter {list(data.TRAIN_JITTER_SCALES)}, crop "
          f"{data.TRAIN_CROP_SIZE}; DataLoader, {a.workers} workers, {a.clips} clips, median of {a.repeats}); copies: "
          f"keyint {d.keyint}, crf {d.crf}, {d.preset}{', fastdecode' if d.fast_decode else ''}\n")
    print("| source | clips/s original | clips/s prepared | ratio | MB original | MB prepared | disk saved "
          "| prepare time |")
    print("|---|---|---|---|---|---|---|---|")
    for name, paths in sets.items():
        orig = rate[(name, "original")]
        for side in sides:
            fast, copies = rate[(name, side)], variants[(name, side)]
            print(f"| {name} ({len(paths)} videos) -> short side {side} | {orig:.2f} | {fast:.2f} | {fast / orig:.2f}x "
                  f"| {mb(paths):.1f} | {mb(copies):.1f} | {1 - mb(copies) / mb(paths):.0%} | "
                  f"{prep[(name, side)]:.1f} s |")
    if a.keyint_sweep:
        keyint_table(a, cfg, sets["720p"], sides[0], work)


def keyint_table(a, cfg, paths, side, work: Path):
    """Clips/s and size of 720p copies against the key frame interval (the copy is decoded from the
    key frame before a clip, so a longer interval decodes more frames per clip)."""
    keyints = [int(k) for k in a.keyint_sweep.split(",")]
    variants, prep = {"original": paths}, {}
    for k in keyints:
        variants[k], prep[k] = prepare_set(paths, work / f"keyint_{k}", Settings(short_side=side, keyint=k), a.workers)
    rate = measure(variants, cfg, a)
    print(f"\n720p ({len(paths)} videos, {a.frames} frames) -> short side {side}, by key frame interval\n")
    print("| keyint | clips/s | vs original | MB | prepare time |")
    print("|---|---|---|---|---|")
    for k in keyints:
        print(f"| {k} | {rate[k]:.2f} | {rate[k] / rate['original']:.2f}x | {mb(variants[k]):.2f} | {prep[k]:.1f} s |")


if __name__ == "__main__":
    main()
