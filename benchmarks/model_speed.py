#!/usr/bin/env python
"""Model compute: vidrec vs pytorchvideo's build of the same network, and the fast paths.

Every figure is a ratio against a baseline measured in the same process;
variants are timed round-robin (one repeat of each in turn), so background
load hits them alike, and medians are reported. Absolute clips/s are printed
for context only. "of peak" is against a measured ceiling: the fastest of several
fp32 kernels (MKL matmuls at several shapes, oneDNN convolutions at the network's
shapes in each layout, prepacked too; on CUDA, cuBLAS matmuls), printed first
with the ISA torch and oneDNN use.

  python benchmarks/model_speed.py                      # CPU-sized: batch 2, 8x112x112
  python benchmarks/model_speed.py --frames 16 --size 224 --batch 8 --device cuda
  python benchmarks/model_speed.py --no-compile         # skip torch.compile (tens of seconds per model)
"""
import argparse
import copy
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import torch.utils.mkldnn  # noqa: E402

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


# CPU ceiling candidates: fp32 matmuls (MKL) at several sizes, and oneDNN convolutions at shapes of
# ResNet3D-50's heaviest layers, each contiguous, channels_last and with prepacked (oneDNN-blocked) weights,
# which is what torch.compile's frozen convolutions run. (dims, c_in, c_out, kernel, batch, spatial)
MATMULS = [(1024, 1024, 1024), (2048, 2048, 2048), (4096, 4096, 4096), (8192, 1024, 256), (2048, 4096, 512)]
CONVS = [(3, 128, 128, 3, 2, (8, 14, 14)), (3, 64, 64, 3, 2, (8, 28, 28)), (3, 256, 256, 3, 1, (8, 28, 28)),
         (3, 1024, 256, 1, 2, (8, 14, 14)), (2, 512, 512, 3, 4, (28, 28))]


def best_gflops(fn, flops: float, device, repeats: int) -> float:
    fn()  # warm-up (oneDNN creates its primitive on the first call)
    return flops / min(timed(fn, device) for _ in range(repeats)) / 1e9


def conv_kernels(dims, cin, cout, k, batch, spatial):
    """(label, fn, flops) of one convolution in each layout."""
    conv = (torch.nn.Conv3d if dims == 3 else torch.nn.Conv2d)(cin, cout, k, padding=k // 2, bias=False).eval()
    x = torch.randn(batch, cin, *spatial)
    cl = torch.channels_last_3d if dims == 3 else torch.channels_last
    flops = 2 * batch * cout * math.prod(spatial) * cin * k ** dims
    shape = f"conv{dims}d {'x'.join([str(k)] * dims)} {cin}->{cout} @ {batch}x{'x'.join(map(str, spatial))}"
    packed = torch.utils.mkldnn.to_mkldnn(conv) if torch.backends.mkldnn.is_available() else None
    x_cl, x_mk = x.contiguous(memory_format=cl), x.to_mkldnn() if packed is not None else None
    conv_cl = copy.deepcopy(conv).to(memory_format=cl)
    yield f"{shape}, contiguous", lambda: conv(x), flops
    yield f"{shape}, channels_last", lambda: conv_cl(x_cl), flops
    if packed is not None:
        yield f"{shape}, oneDNN prepacked", lambda: packed(x_mk), flops


def kernel_ceiling(device, repeats: int = 5):
    """(GFLOP/s of the fastest kernel measured, [(label, GFLOP/s)]): best of ``repeats`` each (peaks, not
    medians). CUDA: fp32 matmuls, with TF32 exactly when cuDNN's convolutions may use it."""
    if device.type == "cuda":
        kernels = [(f"matmul {n}x{n} fp32{' (TF32)' if torch.backends.cudnn.allow_tf32 else ''}", n, n, n)
                   for n in (4096, 8192)]
    else:
        kernels = [(f"matmul {m}x{k} @ {k}x{n}", m, k, n) for m, k, n in MATMULS]
    rows = []
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32
    try:
        with torch.inference_mode():
            for label, m, k, n in kernels:
                a, b = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
                rows.append((label, best_gflops(lambda: a @ b, 2 * m * k * n, device, repeats)))
            if device.type == "cpu":
                for spec in CONVS:
                    rows += [(label, best_gflops(fn, f, device, repeats)) for label, fn, f in conv_kernels(*spec)]
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    return max(g for _, g in rows), rows


def cpu_isa() -> list:
    """What the CPU offers and what torch and oneDNN use of it, one line each."""
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(next((ln.split(":", 1)[1].split() for ln in f if ln.startswith("flags")), []))
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")
    lines = [f"torch CPU capability: {torch.backends.cpu.get_cpu_capability()}; oneDNN available: "
             f"{torch.backends.mkldnn.is_available()}",
             "/proc/cpuinfo: " + ", ".join(f"{w} {'yes' if w in flags else 'no'}" for w in wanted)]
    lines += [ln.strip(" -") for ln in torch.__config__.show().splitlines()
              if any(w in ln for w in ("MKL-DNN", "oneDNN", "Math Kernel", "CPU capability"))]
    # oneDNN reports its ISA and the implementation it picks when verbose: one conv in a child process.
    code = ("import torch\nc = torch.nn.Conv3d(64, 64, 3, padding=1).eval()\nwith torch.no_grad():\n"
            "    c(torch.randn(2, 64, 8, 28, 28))")
    try:
        out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "ONEDNN_VERBOSE": "1"},
                             capture_output=True, text=True, timeout=120).stdout.splitlines()
        isa = next((ln.split("isa:", 1)[1] for ln in out if ",isa:" in ln), "not reported")
        impl = next((ln.split(",")[6] for ln in out if ",exec,cpu,convolution," in ln), "not reported")
        lines.append(f"oneDNN ISA: {isa}; its conv3d implementation: {impl}")
    except (OSError, subprocess.TimeoutExpired) as e:
        lines.append(f"oneDNN ISA: not found ({type(e).__name__})")
    return lines


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


def measure_model(name, args, device, x, y):
    """(FLOPs per forward, {variant: median forward s}, {variant: median training step s})."""
    from vidrec.models.reference import copy_weights_to_pytorchvideo, pytorchvideo_resnet3d

    shape = tuple(x.shape)
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
    return flops, f_times, t_times


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=112)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--no-compile", dest="compile", action="store_false",
                   help="skip the torch.compile'd inference path (compiling takes tens of seconds per model)")
    p.add_argument("--ceiling-repeats", type=int, default=5, help="calls per ceiling kernel (best of), twice")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    shape = (args.batch, 3, args.frames, args.size, args.size)
    x = torch.randn(*shape, device=device)
    y = torch.randint(0, 400, (args.batch,), device=device)

    before = dict(kernel_ceiling(device, args.ceiling_repeats)[1])  # and again after the models:
    measured = {name: measure_model(name, args, device, x, y) for name in ("resnet3d_50", "iresnet3d_50")}
    kernels = {k: max(g, before[k]) for k, g in kernel_ceiling(device, args.ceiling_repeats)[1]}  # load varies
    peak = max(kernels.values())
    results = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
               "device": str(device), "torch": torch.__version__, "input": list(shape),
               "ceiling_gflops": peak, "ceiling_kernels_gflops": kernels, "models": {}}
    print(f"device {device} ({results['machine']}), torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"input {shape}")
    if device.type == "cpu":
        results["isa"] = cpu_isa()
        print("\n".join(results["isa"]))
    libs = "cuBLAS" if device.type == "cuda" else "MKL matmuls, oneDNN convolutions"
    print(f"\nceiling: the fastest kernel measured here, fp32 ({libs}; each the best of {args.ceiling_repeats} "
          f"calls before and {args.ceiling_repeats} after the models)")
    for label, g in kernels.items():
        print(f"  {label:<56} {g:>8.1f} GFLOP/s{'  <- ceiling' if g == peak else ''}")
    print(f"'of peak' below is against this ceiling ({peak:.1f} GFLOP/s); a figure above 100% means the ceiling "
          f"missed a faster kernel\n")

    for name, (flops, f_times, t_times) in measured.items():
        base_f, base_t = f_times["vidrec eager"], t_times["vidrec eager"]
        print(f"{name}: {flops / 1e9:.1f} GFLOP per forward")
        print(f"  {'forward (inference)':<48} {'clips/s':>8} {'vs vidrec eager':>16} {'GFLOP/s':>9} {'of peak':>8}")
        for k, s in f_times.items():
            print(f"  {k:<48} {args.batch / s:>8.2f} {base_f / s:>15.2f}x {flops / s / 1e9:>9.1f} "
                  f"{flops / s / 1e9 / peak:>7.0%}")
        ceiling = peak / (flops / base_f / 1e9)
        print(f"  {'(every FLOP at the ceiling pace)':<48} {args.batch * ceiling / base_f:>8.2f} "
              f"{ceiling:>15.2f}x")
        print(f"  {'training step (fwd+bwd+SGD)':<48} {'clips/s':>8} {'vs vidrec eager':>16}")
        for k, s in t_times.items():
            print(f"  {k:<48} {args.batch / s:>8.2f} {base_t / s:>15.2f}x")
        print()
        results["models"][name] = {
            "gflop_per_forward": flops / 1e9,
            "forward_ceiling_ratio": ceiling,
            "forward_fraction_of_ceiling": {k: flops / s / 1e9 / peak for k, s in f_times.items()},
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
