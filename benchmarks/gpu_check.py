#!/usr/bin/env python
"""GPU readiness check: one run, under 8 minutes at the defaults, a short table at the end.

On the lent CUDA machine (torch alone is enough for everything but the loader), from the repository root:

    PYTHONPATH=. python3 benchmarks/gpu_check.py --json $OUT/gpu_check.json

(about 6 minutes on an H200; sections stop starting at --budget 420 s, a hard stop follows 40 s later, and
the JSON is rewritten after every section, so a run cut short still leaves what it measured)

add ``--site DIR`` (or set VIDREC_SITE) where DIR holds wheels (``*.whl``, unzipped into a temporary folder
at start) or packages already unpacked; they go first on ``sys.path`` (and PYTHONPATH, for the loader's
workers). The loader section needs PyAV (``av-*-manylinux*.whl`` bundles FFmpeg), fvcore, yacs, pyyaml, iopath
and portalocker, built for that machine's Python (``python3 -V`` there): ``pip download --only-binary=:all:
--no-deps --python-version 3.X --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 av pyyaml``
plus ``pip wheel --no-deps fvcore yacs iopath portalocker`` (pure Python), all into one folder.

Sections, in order (each has a time cap; what does not fit is listed as skipped):

* env: torch, CUDA, cuDNN (9.8 to 9.10 gave silently wrong bf16 conv3d results; torch 2.9.0 turned cuDNN's
  conv3d off and was 4x slower), the bf16 matmul peak;
* conv3d: one bf16 3x3x3 convolution (forward + backward) with cuDNN and with cuDNN off: is cuDNN used?
* parity, against fp32 with TF32 off: every distinct conv3d layer of ResNet3D-50 and iResNet3D-50 at 16x224x224
  (output, input and weight gradients) in bf16 and fp16 on the same rounded numbers: the precise check; and
  both networks' logits and gradients (same weights and input) under bf16 and fp16 autocast and fp32 with
  TF32, each with cuDNN and with cuDNN off (PyTorch's own kernels: a second implementation that rounds alike);
* training: clips/s and peak memory of a training step at batch 8, fp32 (PyTorch's defaults: cuDNN may use
  TF32) / bf16 / bf16 + channels_last_3d, with the fraction of the bf16 peak (gpu_training.py's measure());
* loader: the train loader's clips/s on this machine's CPUs, on generated videos (Kinetics-like 340x256);
* decode: TorchCodec NVDEC (device="cuda") against its CPU decoding of a generated 720p video (H.264 where
  the writer has libx264);
* compile: the torch.compile'd bf16 training step of the first model (last: it takes a minute or two).

Without a CUDA device it prints one line and exits 0. ``--device cpu --tiny`` runs every section's code on tiny
shapes (the tests do this).
"""
import argparse
import contextlib
import glob
import json
import math
import os
import signal
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from gpu_training import VARIANTS, bf16_matmul_peak, measure, sync, training_flops  # noqa: E402
from vidrec.engine.precision import mkldnn_disabled  # noqa: E402
from vidrec.models import create  # noqa: E402

# Limits. bf16 keeps 8 significant bits (unit roundoff u = 2^-8 = 3.9e-3), fp16 and TF32 11 (u = 4.9e-4).
# * One convolution against fp32 on the same rounded numbers (the decisive check): only the output's rounding
#   (rel L2 ~ u / 2.4), low-precision intermediate buffers (the CPU's input gradient reached 2u) and the
#   summation order differ: limits 8u, 3e-2 (bf16) and 4e-3 (fp16). A wrong kernel is off by O(1).
# * A whole network at initialisation is chaotic: on the CPU in fp32, ResNet3D-50 (8x112x112) moved its logits
#   by 2.8% and its gradients by 76% (rel L2) for an input change of 0.1%; under bf16 autocast, with correct
#   kernels, the logits by 12% and the gradients by 128%. So the network's errors are judged against the same
#   precision in a second implementation (cuDNN off: PyTorch's own convolutions), which rounds alike: FAIL when
#   cuDNN's logits are more than 3x as far from fp32 and beyond the rounding of ~50 layers, sqrt(50) u: 5e-2
#   (bf16), 1e-2 (fp16, TF32). Gradients are reported, not judged (the per-layer check covers their kernels).
LAYER_LIMIT = {"bf16": 3e-2, "fp16": 4e-3}
LOGITS_LIMIT = {"bf16": 5e-2, "fp16": 1e-2, "tf32": 1e-2}
RATIO_LIMIT = 3.0
PARITY = {"bf16 autocast": "bf16", "fp16 autocast": "fp16", "fp32 with TF32": "tf32"}
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "tf32": None}
TRAIN = ["fp32", "bf16 autocast", "bf16 + channels_last_3d"]
CAPS = {"env": 30, "conv3d": 30, "parity": 150, "training": 180, "loader": 60, "decode": 40, "compile": 150}
EXPECT = {"compile": 120}  # seconds a first unit needs at full size: it starts only if that much is left
KNOWN = ["cuDNN 9.8 to 9.10 gave silently wrong bf16 conv3d results", "torch 2.9.0 turned cuDNN's conv3d off"]


class Clock:
    """Section caps and the overall budget: a unit of work starts only if one more of the last size fits."""

    def __init__(self, budget: float):
        self.t0, self.budget, self.skipped, self.rows, self.section = time.perf_counter(), budget, [], [], ""

    def say(self, check: str, text: str) -> None:
        """One row of the final table, printed now too (a run cut short still shows what it measured)."""
        self.rows.append((check, text))
        print(f"[{self.section} {time.perf_counter() - self.t0:4.0f} s] {check}: {text}", flush=True)

    def start(self, section: str, cap: float, expect: float = 0.0):
        self.section, self.s0, self.cap, self.last = section, time.perf_counter(), cap, expect

    def fits(self, what: str) -> bool:
        now = time.perf_counter()
        left = min(self.s0 + self.cap, self.t0 + self.budget) - now
        if left < self.last:
            self.skipped.append(f"{self.section}: {what} (the time cap left {max(left, 0):.0f} s)")
            return False
        return True

    @contextlib.contextmanager
    def unit(self):
        t = time.perf_counter()
        yield
        self.last = time.perf_counter() - t


class Deadline(Exception):
    pass


def why(e: BaseException) -> str:
    return f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:150]}"


def _alarm(*_):
    raise Deadline("the overall time budget ran out")


@contextlib.contextmanager
def backend_flags(cudnn: bool = True, tf32: bool = False):
    b = torch.backends
    old = b.cudnn.enabled, b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32
    b.cudnn.enabled, b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32 = cudnn, tf32, tf32
    try:
        yield
    finally:
        b.cudnn.enabled, b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32 = old


def add_site(folder: str) -> str:
    """Put ``folder`` (packages, or ``*.whl`` files unzipped here first) at the front of sys.path and PYTHONPATH."""
    wheels = sorted(glob.glob(os.path.join(folder, "*.whl")))
    if wheels:
        folder = tempfile.mkdtemp(prefix="gpu_check_site_")
        for w in wheels:
            zipfile.ZipFile(w).extractall(folder)
    sys.path.insert(0, folder)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (folder, os.environ.get("PYTHONPATH")) if p)
    return f"--site: {len(wheels)} wheel(s) unzipped into {folder}" if wheels else f"--site: {folder} on sys.path"


def cudnn_version() -> str:
    v = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    if not v:
        return "none"
    major, rest = (v // 10000, v % 10000) if v >= 90000 else (v // 1000, v % 1000)
    return f"{major}.{rest // 100}.{rest % 100}"


# --- sections: each reports its table rows with clock.say and returns what goes into the JSON -----------------

def env_section(a, device, clock, results):
    ver = cudnn_version()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (smoke run)"
    peak = bf16_matmul_peak(device) if device.type == "cuda" else bf16_matmul_peak(device, n=256, repeats=2)
    warn = []
    if ver != "none" and (9, 8) <= tuple(int(p) for p in ver.split(".")[:2]) < (9, 11):
        warn.append(KNOWN[0] + ": see the parity rows")
    if torch.__version__.startswith("2.9.0"):
        warn.append(KNOWN[1] + ": see the conv3d row")
    cuda = f"CUDA {torch.version.cuda}" if torch.version.cuda else "no CUDA build"
    clock.say("device", f"{name}; torch {torch.__version__}, {cuda}, cuDNN {ver} "
                        f"(enabled {torch.backends.cudnn.enabled})" + "".join(f"; WARNING: {w}" for w in warn))
    clock.say("bf16 matmul peak", f"{peak:.3g} TFLOP/s")
    return {"device": name, "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": ver,
            "cudnn_raw": torch.backends.cudnn.version(), "warnings": warn, "bf16_peak_tflops": peak}


def conv3d_section(a, device, clock, results):
    c, t, s = (8, 2, 8) if a.tiny else (64, 16, 56)
    conv = torch.nn.Conv3d(c, c, 3, padding=1, bias=False).to(device)
    x = torch.randn(a.batch, c, t, s, s, device=device, requires_grad=True)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16):
            conv(x).float().sum().backward()

    ms = {}
    for on in (True, False):
        with backend_flags(cudnn=on):
            step()  # warm-up (cuDNN benchmark picks its algorithm here)
            sync(device)
            t0 = time.perf_counter()
            for _ in range(3):
                step()
            sync(device)
            ms[on] = (time.perf_counter() - t0) / 3 * 1e3
    ratio = ms[False] / ms[True]
    verdict = "cuDNN is used" if ratio > 1.5 else "cuDNN looks unused for conv3d (no faster than native)"
    if device.type != "cuda":
        verdict = "no cuDNN on the CPU (smoke run)"
    shape = f"{a.batch}x{c}x{t}x{s}x{s}"
    clock.say(f"conv3d 3x3x3 bf16 fwd+bwd {shape}",
              f"cuDNN {ms[True]:.1f} ms, cuDNN off {ms[False]:.1f} ms: {ratio:.1f}x; {verdict}")
    return {"ms_cudnn": ms[True], "ms_native": ms[False]}


def _rel(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.float() - ref).norm() / ref.norm())


def conv3d_layers(model, shape, device) -> dict:
    """{description: (Conv3d, its input shape)}: every distinct convolution of ``model`` at input ``shape``."""
    found = {}

    def hook(m, inputs, output):
        desc = (f"{'x'.join(map(str, m.kernel_size))} {m.in_channels}->{m.out_channels} stride "
                f"{'x'.join(map(str, m.stride))} on {'x'.join(map(str, inputs[0].shape))}")
        found.setdefault(desc, (m, tuple(inputs[0].shape)))

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv3d)]
    with torch.no_grad():
        model(torch.zeros(*shape, device=device))
    for h in hooks:
        h.remove()
    return found


def layer_parity(conv, in_shape, dtype, device) -> dict:
    """One convolution in ``dtype`` against fp32 (TF32 off) on the same rounded input, weights and output
    gradient: rel L2 of the output, the input gradient and the weight gradient (only the output's rounding
    and the summation order differ)."""
    torch.manual_seed(0)
    x, w = torch.randn(*in_shape, device=device).to(dtype), conv.weight.detach().to(dtype)
    gy = None

    def run(dt):
        nonlocal gy
        xx, ww = x.to(dt).requires_grad_(), w.to(dt).requires_grad_()
        y = torch.nn.functional.conv3d(xx, ww, None, conv.stride, conv.padding, conv.dilation, conv.groups)
        gy = torch.randn_like(y, dtype=torch.float32).to(dtype) if gy is None else gy
        y.backward(gy.to(dt))
        return y.detach(), xx.grad, ww.grad

    with backend_flags(tf32=False):
        ref = [t.float() for t in run(torch.float32)]
    return {k: _rel(o, r) for k, o, r in zip(("out", "dgrad", "wgrad"), run(dtype), ref)}


def network_run(model, x, y, dtype=None, cudnn=True, tf32=False):
    """(logits, {parameter: gradient}) in fp32 of one forward + backward; fp16 with the largest loss scale
    (2^16 down) that keeps every gradient finite, as GradScaler does."""
    for scale in ((2.0 ** 16, 2.0 ** 12, 2.0 ** 8, 1.0) if dtype == torch.float16 else (1.0,)):
        model.zero_grad(set_to_none=True)
        with backend_flags(cudnn, tf32):  # the backward too
            with torch.autocast(x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                logits = model(x)
            (torch.nn.functional.cross_entropy(logits.float(), y) * scale).backward()
        grads = {k: p.grad.float() / scale for k, p in model.named_parameters() if p.grad is not None}
        if all(torch.isfinite(g).all() for g in grads.values()):
            break
    return logits.detach().float(), grads


def network_parity(ref, out) -> dict:
    (rl, rg), (ol, og) = ref, out
    cos = {k: float(torch.nn.functional.cosine_similarity(og[k].flatten(), r.flatten(), dim=0))
           for k, r in rg.items() if r.dim() > 1 and float(r.norm()) > 0}  # conv / fc weights
    worst = min(cos, key=cos.get)
    num = sum(float((og[k] - r).pow(2).sum()) for k, r in rg.items())
    return {"logits_rel_l2": _rel(ol, rl), "grad_rel_l2": math.sqrt(num / sum(float(r.pow(2).sum())
                                                                            for r in rg.values())),
            "grad_min_cos": cos[worst], "grad_worst": worst}


def parity_section(a, device, clock, results):
    shape = (a.parity_batch, 3, a.frames, a.size, a.size)
    out, layers = {}, {}
    for name in a.models:
        if not clock.fits(f"{name} parity"):
            continue
        with clock.unit():
            torch.manual_seed(0)
            model = create(name, num_classes=400, dropout=0.0, **a.model_kwargs).to(device)
            x = torch.randn(*shape, device=device)
            y = torch.randint(0, 400, (shape[0],), device=device)
            # BatchNorm set to the statistics of 4x as many other clips, then frozen (eval): a fixed function, as
            # a trained network is. (Batch statistics over 2 clips would amplify rounding through the division.)
            for m in model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.momentum = 1.0
            with torch.no_grad(), backend_flags(tf32=False):
                model.train()(torch.randn(4 * shape[0], *shape[1:], device=device))
            model.eval()
            for desc, (conv, in_shape) in conv3d_layers(model, shape, device).items():
                for kind in ("bf16", "fp16"):
                    if desc not in layers.get(kind, {}):
                        layers.setdefault(kind, {})[desc] = layer_parity(conv, in_shape, DTYPES[kind], device)
            with backend_flags(tf32=False):
                ref = network_run(model, x, y)
            for label, kind in PARITY.items():
                try:
                    r = {on: network_parity(ref, network_run(model, x, y, DTYPES[kind], on == "cuDNN", kind == "tf32"))
                         for on in ("cuDNN", "cuDNN off")}
                    e, e_off = r["cuDNN"]["logits_rel_l2"], r["cuDNN off"]["logits_rel_l2"]
                    ok = math.isfinite(e) and (e <= LOGITS_LIMIT[kind] or e <= RATIO_LIMIT * e_off)
                    r["status"] = "PASS" if ok else "FAIL"
                    g, g_off = r["cuDNN"]["grad_rel_l2"], r["cuDNN off"]["grad_rel_l2"]
                    text = (f"logits rel L2 {e:.1e}, cuDNN off {e_off:.1e} (limit {LOGITS_LIMIT[kind]:.0e} or "
                            f"{RATIO_LIMIT:.0f}x cuDNN off); gradients rel L2 {g:.2f}, cuDNN off {g_off:.2f} "
                            f"{r['status']}")
                except Exception as e:  # e.g. a dtype the device has no kernel for
                    r = {"status": "ERROR", "error": why(e)}
                    text = "ERROR " + r["error"]
                out.setdefault(name, {})[label] = r
                clock.say(f"parity {name} {label}", text)
            del model, ref
            if device.type == "cuda":
                torch.cuda.empty_cache()
    for kind, found in layers.items():
        worst = max(found, key=lambda d: max(found[d].values()))
        e = max(found[worst].values())
        clock.say(f"conv3d layers {kind} vs fp32 ({len(found)} distinct)",
                  f"worst rel L2 {e:.1e} (limit {LAYER_LIMIT[kind]:.0e}; output, input and weight gradients) at "
                  f"{worst} {'PASS' if e <= LAYER_LIMIT[kind] else 'FAIL'}")
    return {"input": list(shape), "models": out, "layers": layers,
            "reference": "fp32, TF32 off, cuDNN on; BatchNorm frozen at the statistics of other random clips"}


def _train_rows(a, device, clock, variants, models, peak):
    out = {}
    shape = (a.batch, 3, a.frames, a.size, a.size)
    for name in models:
        flops, how = training_flops(name, shape, device, **a.model_kwargs)
        for label in variants:
            if not clock.fits(f"{name} {label}"):
                continue
            with clock.unit():
                t = time.perf_counter()
                try:
                    r = measure(device, name, a.batch, a.frames, a.size, a.steps, warmup=a.warmup,
                                **VARIANTS[label], **a.model_kwargs)
                    tflops = flops / r["step_s"] / 1e12
                    r.update(tflops=tflops, fraction_of_bf16_peak=tflops / peak, flops_counted_by=how,
                             wall_s=time.perf_counter() - t)
                    base = out.get(name, {}).get("fp32", {}).get("clips_per_s")
                    text = (f"{r['clips_per_s']:.1f} clips/s" + (f" ({r['clips_per_s'] / base:.2f}x fp32)"
                                                                  if base else "")
                            + f", peak {r['peak_mem_gib']:.1f} GiB, {r['fraction_of_bf16_peak']:.0%} of the bf16 peak"
                            f" ({r['wall_s']:.0f} s)")
                except Exception as e:
                    r = {"error": why(e)}
                    text = "failed: " + r["error"]
                out.setdefault(name, {})[label] = r
                clock.say(f"train {name} {label}", text)
    return {"batch": list(shape), "models": out}


def training_section(a, device, clock, results):
    return _train_rows(a, device, clock, TRAIN, a.models, results["env"]["bf16_peak_tflops"])


def compile_section(a, device, clock, results):
    return _train_rows(a, device, clock, ["bf16 + torch.compile"], a.compile_models,
                       results["env"]["bf16_peak_tflops"])


def panning_frames(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """(n, h, w, 3) uint8: a blocky random texture panning right and down (compresses like camera motion)."""
    m = 4 * n + 16
    rng = np.random.default_rng(seed)
    tex = rng.integers(0, 256, ((h + m) // 8 + 1, (w + m) // 8 + 1, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    return np.stack([tex[2 * i:2 * i + h, 4 * i:4 * i + w] for i in range(n)])


def write_video(path: str, frames: np.ndarray) -> str:
    """H.264 (else MPEG-4) at 30 fps with PyAV, else TorchCodec's encoder; the writer's name."""
    try:
        import av  # noqa: F401
        from vidrec.data.synthetic import write_video as pyav_write

        pyav_write(path, frames, fps=30)
        return "PyAV"
    except ImportError:
        from torchcodec.encoders import VideoEncoder

        VideoEncoder(torch.from_numpy(frames).permute(0, 3, 1, 2), frame_rate=30).to_file(path)
        return "TorchCodec"


def loader_section(a, device, clock, results):
    try:
        import av  # noqa: F401
        from torch.utils.data import DataLoader

        from vidrec.config.defaults import get_cfg
        from vidrec.data import backends
        from vidrec.data.datasets import VideoDataset, collate_train
    except ImportError as e:
        return {"skip": f"needs {e.name} (vidrec indexes every video with PyAV and reads its config with fvcore): "
                        "bring the wheels with --site DIR"}
    cfg = get_cfg()  # Kinetics defaults: 16x4 clips, scale jitter [256, 320], 224 crop
    n_videos, (h, w), n_frames = (3, (48, 64), 24) if a.tiny else (12, (256, 340), 150)
    if a.tiny:
        cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE = 4, 2
        cfg.DATA.TRAIN_JITTER_SCALES, cfg.DATA.TRAIN_CROP_SIZE = [40, 48], 32
    names = [b for b in cfg.DATA.DECODER if not backends.backend(b).unavailable()] or ["pyav"]
    cfg.DATA.DECODER = names
    with tempfile.TemporaryDirectory(prefix="gpu_check_videos_") as tmp:
        paths = [os.path.join(tmp, f"v{i}.mp4") for i in range(n_videos)]
        t = time.perf_counter()
        for i, p in enumerate(paths):
            write_video(p, panning_frames(n_frames, h, w, seed=i))
        made = time.perf_counter() - t
        ds = VideoDataset(paths, [0] * n_videos, cfg, train=True)
        clips = 8 * max(4, 3 * a.workers)
        keys = [(i % n_videos, 1000 + i) for i in range(clips)]
        loader = DataLoader(ds, batch_size=8, sampler=keys, num_workers=a.workers, collate_fn=collate_train,
                            prefetch_factor=4 if a.workers else None)
        cap = time.perf_counter() + max(5.0, CAPS["loader"] - made - 15)
        it = iter(loader)
        next(it)  # worker start-up is not counted
        t, n = time.perf_counter(), 0
        for batch in it:
            n += len(batch[1])
            if time.perf_counter() > cap:
                break
        rate = n / (time.perf_counter() - t)
        del it
    what = f"{n_videos} videos {w}x{h}, {ds.num_frames}x{ds.rate} clips, {ds.crop} crop, decoder {names[0]}"
    clock.say(f"train loader, {a.workers} workers", f"{rate:.1f} clips/s ({what}; {n} clips timed)")
    steps = [(r["clips_per_s"], f"{m} {k}") for m, rows in results.get("training", {}).get("models", {}).items()
             for k, r in rows.items() if "clips_per_s" in r]
    if steps:
        fastest, label = max(steps)
        clock.say("loader vs the fastest training step", f"{rate / fastest:.2f}x ({label}: {fastest:.1f} clips/s)"
                  + ("; the loader would limit training" if rate < fastest else ""))
    return {"clips_per_s": rate, "workers": a.workers, "decoders": names, "videos_written_s": made}


def decode_section(a, device, clock, results):
    from vidrec.data.backends import torchcodec_backend

    reason = torchcodec_backend.unavailable()
    if reason:
        return {"skip": reason}
    from torchcodec.decoders import VideoDecoder

    (h, w), n = ((64, 96), 12) if a.tiny else ((720, 1280), 150)
    with tempfile.TemporaryDirectory(prefix="gpu_check_decode_") as tmp:
        path = os.path.join(tmp, "v.mp4")
        writer = write_video(path, panning_frames(n, h, w))
        fps, frames = {}, {}
        for label, dev, threads in (("cpu, 1 thread", "cpu", 1), ("cpu, all threads", "cpu", 0),
                                    (f"{device.type} (NVDEC)" if device.type == "cuda" else "cpu (smoke run)",
                                     device.type, 1)):
            best = float("inf")
            for _ in range(2):  # the first includes opening the decoder (and the CUDA context)
                sync(device)
                t = time.perf_counter()
                dec = VideoDecoder(path, device=dev, num_ffmpeg_threads=threads)
                out = dec.get_frames_in_range(0, len(dec)).data
                sync(device)
                best = min(best, time.perf_counter() - t)
            fps[label], frames[label] = out.shape[0] / best, out.cpu()
        codec = VideoDecoder(path).metadata.codec
    base = frames["cpu, 1 thread"].float()
    diff = {k: float((f.float() - base).abs().mean()) for k, f in frames.items()}
    text = ", ".join(f"{k} {v:.0f} frames/s" for k, v in fps.items())
    last = list(fps)[-1]
    clock.say(f"TorchCodec decode {w}x{h} {codec} (written by {writer})",
              f"{text}; mean abs diff vs 1-thread CPU {diff[last]:.2f}/255")
    return {"video_writer": writer, "codec": codec, "frames_per_s": fps, "mean_abs_diff": diff}


SECTIONS = {"env": env_section, "conv3d": conv3d_section, "parity": parity_section, "training": training_section,
            "loader": loader_section, "decode": decode_section, "compile": compile_section}


def run_sections(a, device, clock) -> dict:
    """Every section in turn (env first: the others use its bf16 peak) under the overall budget, with a
    hard stop if something hangs; the results are saved after each section."""
    threads = torch.get_num_threads()
    if a.tiny and device.type == "cpu":  # a smoke run on a shared CPU: OpenMP threads waiting on each other
        torch.set_num_threads(1)         # made it 5x slower
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(int(a.budget) + 40)  # a hard stop if something hangs: the table still prints
    results = {}
    try:
        for section in ["env"] + [x for x in a.sections.split(",") if x != "env"]:
            clock.start(section, CAPS[section], 0.0 if a.tiny else EXPECT.get(section, 0.0))
            if section == "compile" and not a.compile_models:
                clock.skipped.append("compile: no model to compile" + (" (--tiny)" if a.tiny else ""))
                continue
            if section != "env" and time.perf_counter() - clock.t0 > a.budget:
                clock.skipped.append(f"{section}: the overall budget ({a.budget:.0f} s) was spent")
                continue
            t = time.perf_counter()
            try:
                r = SECTIONS[section](a, device, clock, results)
            except Exception as e:  # report and go on: the table is the point
                r = {"error": why(e)}
                clock.say(section, "ERROR " + r["error"])
            if "skip" in r:
                clock.skipped.append(f"{section}: {r['skip']}")
                print(f"[{section}] skipped: {r['skip']}", flush=True)
            r["seconds"] = time.perf_counter() - t
            results[section] = r
            save(a, results, clock)
            if device.type == "cuda":
                torch.cuda.empty_cache()
    except Deadline:  # between sections
        clock.skipped.append(f"the sections after {clock.section}: the overall budget ran out")
    finally:
        signal.alarm(0)
        torch.set_num_threads(threads)
    return results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda (the check) or cpu (a smoke run of the same code)")
    p.add_argument("--tiny", action="store_true",
                   help="iresnet3d_18 x0.25 on 4x32x32 clips, 1 step: exercise every section's code")
    p.add_argument("--models", nargs="+", help="default resnet3d_50 iresnet3d_50 (--tiny: iresnet3d_18)")
    p.add_argument("--compile-models", nargs="*", help="default: the first model (--tiny: none)")
    p.add_argument("--batch", type=int, help="training batch (default 8, --tiny 2)")
    p.add_argument("--parity-batch", type=int, default=2)
    p.add_argument("--frames", type=int, help="default 16 (--tiny 4)")
    p.add_argument("--size", type=int, help="default 224 (--tiny 32)")
    p.add_argument("--steps", type=int, help="timed training steps (default 10, --tiny 1)")
    p.add_argument("--warmup", type=int, help="untimed steps first (default 3, --tiny 0; compile adds 2)")
    p.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="loader workers")
    p.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset of " + ",".join(SECTIONS))
    p.add_argument("--budget", type=float, default=420, help="overall seconds; sections also have caps")
    p.add_argument("--site", default=os.environ.get("VIDREC_SITE"), help="a folder of wheels or unpacked packages")
    p.add_argument("--json", help="also write the results here")
    a = p.parse_args(argv)
    tiny = dict(models=["iresnet3d_18"], compile_models=[], batch=2, frames=4, size=32, steps=1, warmup=0)
    full = dict(models=["resnet3d_50", "iresnet3d_50"], compile_models=None, batch=8, frames=16, size=224,
                steps=10, warmup=3)
    for k, v in (tiny if a.tiny else full).items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    if a.compile_models is None:
        a.compile_models = a.models[:1]
    a.model_kwargs = {"width_mult": 0.25} if a.tiny else {}
    if a.tiny:
        a.workers = min(a.workers, 2)
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; nothing measured (run it on a GPU machine, or --device cpu --tiny)")
        return {}
    if a.site:
        print(add_site(a.site))
    torch.backends.cudnn.benchmark = True
    if device.type == "cpu":  # the smoke run computes as vidrec's CPU bf16 training does
        print("gpu_check on the CPU: oneDNN convolutions off, as in vidrec's CPU bf16 training (torch 2.13's oneDNN "
              "bf16 Conv3d weight gradient is wrong or NaN on some AVX512_BF16 CPUs: vidrec.engine.precision)")
    clock = Clock(a.budget)
    with mkldnn_disabled(device.type == "cpu"):
        results = run_sections(a, device, clock)
    save(a, results, clock)
    width = max((len(c) for c, _ in clock.rows), default=10)
    print(f"\n== gpu_check summary ({time.perf_counter() - clock.t0:.0f} s) ==")
    for check, text in clock.rows:
        print(f"{check:<{width}}  {text}")
    for s in clock.skipped:
        print(f"skipped {s}")
    print(f"{len(results['failed'])} check(s) failed" + ": " * bool(results["failed"]) + "; ".join(results["failed"]))
    return results


def save(a, results, clock) -> None:
    """Table, skips and failures into ``results``, and the JSON written (after every section)."""
    results.update(table=clock.rows, skipped=clock.skipped, args=dict(vars(a)),
                   failed=[c for c, t in clock.rows if " FAIL" in t or t.startswith(("ERROR", "failed"))])
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1, default=str)


if __name__ == "__main__":
    main()
