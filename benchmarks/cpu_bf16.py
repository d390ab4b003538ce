#!/usr/bin/env python
"""CPU bf16 training: what the oneDNN workaround costs, and what a start-up probe would cost.

torch 2.13's oneDNN bf16 Conv3d weight gradient is intermittently NaN on some
CPUs with AVX512_BF16, so vidrec trains CPU bf16 with oneDNN convolutions off
(``vidrec.engine.precision.mkldnn_disabled``). This times one training step
(forward, backward, SGD; channels_last_3d as the CPU default) of

  * the tiny config (iresnet3d_18 at 1/8 width, batch 8 x 4x32x32),
  * a bigger one (iresnet3d_50 at 1/4 width, batch 2 x 8x112x112),

in fp32, bf16 with oneDNN and bf16 without oneDNN (round-robin, medians), notes
which convolution kernel the bf16 step really runs here (oneDNN takes bf16
convolutions only on CPUs with native bf16 support), and times the probe that
reproduces the bug (one Conv3d, 20 seeds).

  python benchmarks/cpu_bf16.py
  python benchmarks/cpu_bf16.py --repeats 9 --threads 2 --json out.json

Measured 2026-12-01 on a 2-core AMD EPYC with AVX2 only (no native bf16), torch
2.13.0, 1 thread, median of 9 (2-thread runs on that shared machine were dominated
by other load):

  s/step                      fp32   bf16 + oneDNN   bf16, oneDNN off
  tiny (8 x 4x32x32)          0.050  0.456 (9.1x)    0.453 (9.1x)
  bigger (2 x 8x112x112)      0.634  5.31 (8.4x)     5.51 (8.7x)
  probe (20 seeds): 2.55 s, 0/20 NaN (this CPU never runs oneDNN bf16 convolutions)
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from vidrec.engine.precision import autocast, mkldnn_disabled  # noqa: E402
from vidrec.models import create  # noqa: E402

CASES = {
    "tiny (iresnet3d_18 x1/8, 8 x 4x32x32)": dict(arch="iresnet3d_18", width=0.125, batch=8, frames=4, size=32),
    "bigger (iresnet3d_50 x1/4, 2 x 8x112x112)": dict(arch="iresnet3d_50", width=0.25, batch=2, frames=8, size=112),
}
MODES = ("fp32", "bf16 + oneDNN", "bf16, oneDNN off")


def step_fn(case, mode):
    torch.manual_seed(0)
    fmt = torch.channels_last_3d
    net = create(case["arch"], num_classes=400, width_mult=case["width"]).to(memory_format=fmt).train()
    x = torch.randn(case["batch"], 3, case["frames"], case["size"], case["size"]).contiguous(memory_format=fmt)
    y = torch.randint(0, 400, (case["batch"],))
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    precision = "fp32" if mode == "fp32" else "bf16"
    off = mode == "bf16, oneDNN off"
    dev = torch.device("cpu")

    def run():
        opt.zero_grad(set_to_none=True)
        with mkldnn_disabled(off):
            with autocast(precision, dev):
                logits = net(x)
            F.cross_entropy(logits.float(), y).backward()
        opt.step()
    return run


def conv_kernels(case, mode):
    """The convolution kernels one step runs (profiler op names)."""
    from torch.profiler import profile

    run = step_fn(case, mode)
    with profile() as p:
        run()
    names = {e.name for e in p.events()}
    return sorted(n for n in names if n.startswith(("aten::mkldnn_conv", "aten::slow_conv", "aten::_slow_conv",
                                                     "aten::mkldnn_convolution", "aten::_nnpack")))


def probe(seeds=20):
    """The bug report's reproduction: NaN weight-gradient count over ``seeds`` seeds."""
    bad = 0
    for s in range(seeds):
        torch.manual_seed(s)
        conv = torch.nn.Conv3d(3, 16, (5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False)
        x = torch.randn(4, 3, 4, 32, 32)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = conv(x)
        y.float().square().mean().backward()
        bad += int(not torch.isfinite(conv.weight.grad).all())
    return bad


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cap = torch.backends.cpu.get_cpu_capability()
    print(f"{platform.processor() or platform.machine()}, CPU capability {cap}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    results = {"cpu_capability": cap, "torch": torch.__version__, "threads": torch.get_num_threads(), "cases": {}}
    for name, case in CASES.items():
        fns = {m: step_fn(case, m) for m in MODES}
        for fn in fns.values():  # warm-up
            fn()
        times = {m: [] for m in MODES}
        for _ in range(args.repeats):
            for m, fn in fns.items():
                t = time.perf_counter()
                fn()
                times[m].append(time.perf_counter() - t)
        med = {m: statistics.median(v) for m, v in times.items()}
        kernels = {m: conv_kernels(case, m) for m in MODES}
        print(f"\n{name}: training step, median of {args.repeats}")
        print(f"  {'mode':<20} {'s/step':>8} {'vs fp32':>8} {'vs bf16+oneDNN':>15}  conv kernels")
        for m in MODES:
            print(f"  {m:<20} {med[m]:>8.3f} {med[m] / med['fp32']:>7.2f}x {med[m] / med['bf16 + oneDNN']:>14.2f}x"
                  f"  {', '.join(kernels[m])}")
        results["cases"][name] = {"seconds_per_step": med, "conv_kernels": kernels}
    probe()  # warm-up
    t = time.perf_counter()
    bad = probe()
    probe_s = time.perf_counter() - t
    print(f"\nprobe (1 Conv3d fwd+bwd, 20 seeds): {probe_s:.3f} s, {bad}/20 NaN weight gradients")
    results["probe"] = {"seconds": probe_s, "nan_seeds": bad, "seeds": 20}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
