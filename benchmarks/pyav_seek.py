#!/usr/bin/env python
"""PyAV clip reads: from the key frame before the clip (the frame index's key-frame list) vs the older
fixed 2-second margin before it, on the same files and clips in the same run (not a test).

For each set of files, 16x4 training clips at random starts (the same starts for both ways) are read
with the PyAV backend; reported: clips/s of each way, the ratio, and frames decoded per clip. Sets:
320-px H.264 with a key frame every 32 frames (what ``vidrec prepare`` writes), every 2 s (cameras,
``data_throughput``'s synthetic files) and every 250 frames (x264's default), and the real samples
when present. Both ways must return the same pixels (checked on every clip).

    python benchmarks/pyav_seek.py [--videos ../shared/videos] [--clips 20] [--repeats 3]
"""
import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

from data_throughput import write_720p  # noqa: E402
from vidrec.data import VideoError  # noqa: E402
from vidrec.data.backends import pyav_backend  # noqa: E402
from vidrec.data.inputs import videos_under  # noqa: E402
from vidrec.data.video_index import index_video  # noqa: E402

SPAN = 16 * 4  # a Kinetics training clip: 16 frames, every 4th


def clips(index, count: int, rng) -> list:
    starts = rng.integers(0, index.num_frames - SPAN, count)
    return [np.arange(s, s + SPAN, 4) for s in starts]


def read_all(path, index, plan, counter) -> list:
    out = []
    for ids in plan:
        d = pyav_backend.read(path, ids, index)
        out.append(d.frames)
        counter[0] += 1
    return out


def measure(paths, a) -> dict:
    """Both ways on the same clips, alternating which goes first; -> clips/s per way, decoded frames per clip."""
    rng = np.random.default_rng(0)
    work = []
    for p in paths:
        try:
            index = index_video(p)
        except VideoError:
            continue
        if index.num_frames > SPAN + 8:
            work.append((p, index, dataclasses.replace(index, keys=None), clips(index, a.clips, rng)))
    if not work:
        return {}
    decoded = {"key frame": [0], "2 s margin": [0]}
    real = pyav_backend.decoded_frames

    def counting(way):
        def gen(*args, **kw):
            for item in real(*args, **kw):
                decoded[way][0] += 1
                yield item
        return gen

    times = {w: [] for w in decoded}
    for r in range(a.repeats):
        order = list(decoded) if r % 2 == 0 else list(decoded)[::-1]
        got = {}
        for way in order:
            pyav_backend.decoded_frames = counting(way)
            n, t0 = [0], time.perf_counter()
            got[way] = [read_all(p, ix if way == "key frame" else old, plan, n) for p, ix, old, plan in work]
            times[way].append(n[0] / (time.perf_counter() - t0))
        pyav_backend.decoded_frames = real
        for a_clips, b_clips in zip(got["key frame"], got["2 s margin"]):
            for fa, fb in zip(a_clips, b_clips):
                assert fa.keys() == fb.keys() and all(np.array_equal(fa[k], fb[k]) for k in fa), "frames differ"
    n_clips = sum(len(w[3]) for w in work) * a.repeats
    return {w: {"clips_s": statistics.median(times[w]), "frames_per_clip": decoded[w][0] / n_clips} for w in decoded}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", default=os.path.join(HERE, "..", "..", "shared", "videos"))
    p.add_argument("--clips", type=int, default=20, help="clips per file")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sets = {}
        for gop, what in ((32, "key frame every 32 (vidrec prepare)"), (60, "every 2 s"),
                          (250, "every 250 (x264 default)")):
            d = Path(tmp) / f"gop{gop}"
            d.mkdir()
            sets[f"320p H.264, {what}"] = write_720p(d, 2, 300, size=(320, 426), gop=gop)
        if os.path.isdir(a.videos):
            sets["real samples"] = [str(v) for v in videos_under(a.videos)]
        print("| files | key frame: clips/s | 2 s margin: clips/s | ratio | "
              "frames decoded per clip (key frame / margin) |")
        print("|---|---|---|---|---|")
        for name, paths in sets.items():
            m = measure(paths, a)
            if not m:
                continue
            k, o = m["key frame"], m["2 s margin"]
            rows.append((name, k["clips_s"] / o["clips_s"]))
            print(f"| {name} | {k['clips_s']:.1f} | {o['clips_s']:.1f} | **{k['clips_s'] / o['clips_s']:.2f}x** | "
                  f"{k['frames_per_clip']:.0f} / {o['frames_per_clip']:.0f} |", flush=True)
    print(f"\n(16x4 clips, {a.clips} per file at the same random starts for both ways, median of {a.repeats} "
          "repeats; the same pixels both ways, checked on every clip)")
    return rows


if __name__ == "__main__":
    main()
