#!/usr/bin/env python
"""Model compute: vidrec vs pytorchvideo's build of the same network, and the fast paths.

Every figure is a ratio against a baseline measured in the same process;
variants are timed round-robin (one repeat of each in turn), so background
load hits them alike, and medians are reported. Absolute clips/s are printed
for context only.

  python benchmarks/model_speed.py                      # CPU-sized: batch 2, 8x112x112
  python benchmarks/model_speed.py --frames 16 --size 224 --batch 8 --device cuda
  python benchmarks/model_speed.py --no-compile         # skip torch.compile (tens of seconds per model)
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

from vidrec.models import create  # noqa: E402
from vidrec.models.complexity import fvcore_flops  # noqa: E402
from vidrec.inference.predictor import compile_for_inference  # noqa: E402
from vidrec.models.fuse import fold_batchnorm  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device):
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def round_robin(variants: dict, device, repeats: int, warmup: int = 1) -> dict:
    """Median seconds per call of each variant, timed in turn."""
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in variants}
    for _ in range(repeats):
        for k, fn in variants.items():
            times[k].append(timed(fn, device))
    return {k: statistics.median(v) for k, v in times.items()}


def matmul_peak(device, n: int = 2048, repeats: int = 10) -> float:
    """Achievable fp32 GFLOP/s on this device: a large matmul, best of ``repeats`` (a peak, not a median)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    s = min(timed(lambda: a @ b, device) for _ in range(repeats))
    return 2 * n ** 3 / s / 1e9


def forward_fn(model, x):
    def run():
        with torch.inference_mode():
            model(x)
    return run


def train_fn(model, x, y):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def run():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
    return run


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=112)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--no-compile", dest="compile", action="store_false",
                   help="skip the torch.compile'd inference path (compiling takes tens of seconds per model)")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    shape = (args.batch, 3, args.frames, args.size, args.size)
    x = torch.randn(*shape, device=device)
    y = torch.randint(0, 400, (args.batch,), device=device)

    from vidrec.models.reference import copy_weights_to_pytorchvideo, pytorchvideo_resnet3d

    peak = matmul_peak(device)
    results = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
               "device": str(device), "torch": torch.__version__, "input": list(shape),
               "matmul_peak_gflops": peak, "models": {}}
    print(f"device {device} ({results['machine']}), torch {torch.__version__}, {torch.get_num_threads()} threads, input {shape}")
    print(f"matmul peak (fp32): {peak:.1f} GFLOP/s\n")

    for name in ("resnet3d_50", "iresnet3d_50"):
        ours = create(name, num_classes=400).to(device).eval()
        flops = 2 * fvcore_flops(ours, shape)  # multiply-adds -> FLOPs
        fwd = {"vidrec eager": forward_fn(ours, x)}
        if name == "resnet3d_50":
            ptv = pytorchvideo_resnet3d(50, 400).to(device).eval()
            copy_weights_to_pytorchvideo(ours.cpu(), ptv.cpu())
            ours.to(device), ptv.to(device)
            fwd["pytorchvideo eager"] = forward_fn(ptv, x)
        folded = fold_batchnorm(ours)
        fwd["vidrec folded BN"] = forward_fn(folded, x)
        x_cl = x.contiguous(memory_format=torch.channels_last_3d)
        cl = fold_batchnorm(ours).to(memory_format=torch.channels_last_3d)
        fwd["vidrec folded BN + channels_last_3d"] = forward_fn(cl, x_cl)
        if args.compile:  # what Predictor(compile=True) runs
            compiled = compile_for_inference(fold_batchnorm(ours).to(memory_format=torch.channels_last_3d))
            fwd["vidrec folded BN + channels_last_3d + compile"] = forward_fn(compiled, x_cl)
        f_times = round_robin(fwd, device, args.repeats, warmup=2 if args.compile else 1)

        train = {"vidrec eager": train_fn(create(name, num_classes=400).to(device).train(), x, y)}
        if name == "resnet3d_50":
            train["pytorchvideo eager"] = train_fn(pytorchvideo_resnet3d(50, 400).to(device).train(), x, y)
        cl_net = create(name, num_classes=400).to(device, memory_format=torch.channels_last_3d).train()
        train["vidrec channels_last_3d"] = train_fn(cl_net, x_cl, y)
        t_times = round_robin(train, device, max(3, args.repeats - 2))

        base_f, base_t = f_times["vidrec eager"], t_times["vidrec eager"]
        print(f"{name}: {flops / 1e9:.1f} GFLOP per forward")
        print(f"  {'forward (inference)':<48} {'clips/s':>8} {'vs vidrec eager':>16} {'GFLOP/s':>9} {'of peak':>8}")
        for k, s in f_times.items():
            print(f"  {k:<48} {args.batch / s:>8.2f} {base_f / s:>15.2f}x {flops / s / 1e9:>9.1f} "
                  f"{flops / s / 1e9 / peak:>7.0%}")
        ceiling = peak / (flops / base_f / 1e9)
        print(f"  {'(every FLOP at the matmul peak pace)':<48} {args.batch * ceiling / base_f:>8.2f} "
              f"{ceiling:>15.2f}x")
        print(f"  {'training step (fwd+bwd+SGD)':<48} {'clips/s':>8} {'vs vidrec eager':>16}")
        for k, s in t_times.items():
            print(f"  {k:<48} {args.batch / s:>8.2f} {base_t / s:>15.2f}x")
        print()
        results["models"][name] = {
            "gflop_per_forward": flops / 1e9,
            "forward_ceiling_ratio": ceiling,
            "forward_clips_per_s": {k: args.batch / s for k, s in f_times.items()},
            "forward_ratio_vs_eager": {k: base_f / s for k, s in f_times.items()},
            "train_clips_per_s": {k: args.batch / s for k, s in t_times.items()},
            "train_ratio_vs_eager": {k: base_t / s for k, s in t_times.items()},
        }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
