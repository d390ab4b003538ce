#!/usr/bin/env python
"""uint8 clips -> normalised float model input on the CPU (not a test): ``to_model_input`` against the
earlier code in the same run, the 3 channel factors broadcast innermost over a channels-last tensor.
Both give the same numbers (checked); reported: ms per batch and the ratio, median of repeats. The
contiguous rows run the same code both ways: their distance from 1.00x is the noise of the run.

    python benchmarks/normalize_speed.py [--repeats 7] [--threads 1]
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

from vidrec.data.transforms import _affine, to_model_input  # noqa: E402

MEAN, STD = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)
SHAPES = {"train batch 8 x 16x224x224": (8, 16, 224, 224), "test chunk 30 x 16x256x256": (30, 16, 256, 256),
          "small 8 x 8x112x112": (8, 8, 112, 112)}


def broadcast(clips, fmt):
    """The earlier normalize(): convert, then multiply and add with (3, 1, 1, 1) factors."""
    x = clips.movedim(-1, -4).to(torch.float32, memory_format=fmt, copy=True)
    scale, shift = _affine(MEAN, STD, x.device)
    return x.mul_(scale).add_(shift)


def ms(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    cpu = torch.device("cpu")
    print("| input | layout | to_model_input ms | broadcast ms (earlier) | ratio |\n|---|---|---|---|---|")
    rows = []
    for name, shape in SHAPES.items():
        clips = torch.randint(0, 256, (*shape, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
        for fmt, label in ((torch.channels_last_3d, "channels_last_3d"),
                           (torch.contiguous_format, "contiguous (same code both ways: the noise)")):
            assert torch.equal(to_model_input(clips, cpu, MEAN, STD, fmt), broadcast(clips, fmt))
            new = ms(lambda: to_model_input(clips, cpu, MEAN, STD, fmt), a.repeats)
            old = ms(lambda: broadcast(clips, fmt), a.repeats)
            rows.append((name, label, old / new))
            print(f"| {name} | {label} | {new:.1f} | {old:.1f} | **{old / new:.2f}x** |", flush=True)
    print(f"\n({a.threads} thread(s), median of {a.repeats}; the same numbers both ways, checked)")
    return rows


if __name__ == "__main__":
    main()
