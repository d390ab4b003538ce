#!/usr/bin/env python
"""GPU training step: fp32 vs bf16 autocast vs channels_last_3d vs torch.compile.

Reports clips/s and peak memory at the paper's clip size (batch 8 x 16x224x224
by default), each as a ratio against fp32 eager measured in the same run, and
the fraction of the device's bf16 peak reached (measured with a large bf16
matmul in the same run). Without a CUDA device it says so and exits 0.

  python benchmarks/gpu_training.py                    # iresnet3d_50 and resnet3d_50
  python benchmarks/gpu_training.py --models iresnet3d_50 --batch 8 --steps 10
  python benchmarks/gpu_training.py --device cpu --models iresnet3d_18 --batch 1 --frames 2 --size 32 \
      --steps 1 --no-compile                           # smoke run of the same code (the tests do this)
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from vidrec.models import create  # noqa: E402

VARIANTS = {  # label -> measure() keywords
    "fp32": dict(bf16=False, channels_last=False, compile_=False),
    "fp32 + channels_last_3d": dict(bf16=False, channels_last=True, compile_=False),
    "bf16 autocast": dict(bf16=True, channels_last=False, compile_=False),
    "bf16 + channels_last_3d": dict(bf16=True, channels_last=True, compile_=False),
    "bf16 + torch.compile": dict(bf16=True, channels_last=False, compile_=True),
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bf16_matmul_peak(device: torch.device, n: int = 8192, repeats: int = 10) -> float:
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    sync(device)
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * n ** 3 * repeats / (time.perf_counter() - t) / 1e12


def training_flops(name: str, shape, device: torch.device, **model_kwargs):
    """(FLOPs of one training step ~ 3x the forward's, how they were counted): fvcore's count where fvcore is
    installed, else vidrec's paper-convention count (the same conv/fc multiply-adds, plus BN/ReLU/pool ops)."""
    from vidrec.models.complexity import paper_flops

    model = create(name, num_classes=400, **model_kwargs).to(device)
    try:
        from vidrec.models.complexity import fvcore_flops

        macs, how = fvcore_flops(model, shape), "fvcore"
    except ImportError:  # e.g. a GPU machine with torch alone
        macs, how = paper_flops(model, shape), "paper convention (no fvcore)"
    # Training FLOPs ~ 3x forward (forward + two backward matmuls per layer); multiply-adds -> FLOPs.
    return 3 * 2 * macs, how


def measure(device: torch.device, name: str, batch: int, frames: int, size: int, steps: int, bf16: bool,
            channels_last: bool, compile_: bool, warmup: int = 3, **model_kwargs) -> dict:
    torch.manual_seed(0)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    model = create(name, num_classes=400, **model_kwargs).to(device, memory_format=fmt).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    step_model = torch.compile(model) if compile_ else model
    x = torch.randn(batch, 3, frames, size, size, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 400, (batch,), device=device)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(step_model(x), y)
        loss.backward()
        opt.step()

    for _ in range(warmup + 2 * compile_):  # warm-up (and compilation)
        step()
    sync(device)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - t)
    s = statistics.median(times)
    peak_mem = torch.cuda.max_memory_allocated() / 2 ** 30 if cuda else float("nan")
    return {"clips_per_s": batch / s, "step_s": s, "peak_mem_gib": peak_mem}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["iresnet3d_50", "resnet3d_50"])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (compile adds 2)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--device", default="cuda", help="cuda (the benchmark) or cpu (a smoke run of the same code)")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_training: no CUDA device here; nothing measured (run this on a GPU machine)")
        return {}
    torch.backends.cudnn.benchmark = True
    peak = bf16_matmul_peak(device) if device.type == "cuda" else bf16_matmul_peak(device, n=512, repeats=2)
    name_of_device = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (smoke run)"
    print(f"{name_of_device}, torch {torch.__version__}, cudnn {torch.backends.cudnn.version()}")
    print(f"bf16 matmul peak: {peak:.0f} TFLOP/s; batch {args.batch} x {args.frames}x{args.size}x{args.size}\n")
    variants = {k: v for k, v in VARIANTS.items() if not (args.no_compile and v["compile_"])}
    results = {"device": name_of_device, "bf16_peak_tflops": peak, "models": {}}
    for name in args.models:
        shape = (args.batch, 3, args.frames, args.size, args.size)
        flops, how = training_flops(name, shape, device)
        rows = {}
        for label, kw in variants.items():
            try:
                rows[label] = measure(device, name, args.batch, args.frames, args.size, args.steps,
                                      warmup=args.warmup, **kw)
            except Exception as e:  # e.g. compile unavailable: report, keep going
                rows[label] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"}
        base = rows["fp32"].get("clips_per_s", float("nan"))
        print(f"{name} ({flops / 1e12:.2f} TFLOP per training step, {how})")
        print(f"  {'variant':<26} {'clips/s':>8} {'vs fp32':>8} {'peak GiB':>9} {'of bf16 peak':>13}")
        for label, r in rows.items():
            if "error" in r:
                print(f"  {label:<26} failed: {r['error']}")
                continue
            tflops = flops / r["step_s"] / 1e12
            r.update(ratio_vs_fp32=r["clips_per_s"] / base, tflops=tflops, fraction_of_bf16_peak=tflops / peak)
            print(f"  {label:<26} {r['clips_per_s']:>8.1f} {r['ratio_vs_fp32']:>7.2f}x {r['peak_mem_gib']:>9.1f} "
                  f"{r['fraction_of_bf16_peak']:>12.0%}")
        results["models"][name] = rows
        print()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
