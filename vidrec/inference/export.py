"""Export a trained model to TorchScript or ONNX, with a parity check against eager PyTorch.

The exported graph takes normalised clips ``(N, 3, T, H, W)`` float32 (RGB,
pixel / 255, minus ``DATA.MEAN``, divided by ``DATA.STD``), N dynamic, and
returns logits, softmax probabilities or pooled embeddings (``output``). A
sidecar ``<file>.json`` records the input recipe and class names.

ONNX needs the optional packages ``onnx``, ``onnxscript`` (torch's default
"dynamo" exporter) and ``onnxruntime`` (parity check); TorchScript needs none.
"""
from __future__ import annotations

import json
import os
import time
import warnings
from typing import Dict, Optional

import numpy as np
import torch
from torch import nn

from ..utils.io import atomic_write_text

FORMATS = ("torchscript", "onnx")
OUTPUTS = ("logits", "probs", "features")
ONNX_EXPORTERS = ("dynamo", "legacy")


class ExportHead(nn.Module):
    """The network with a fixed output: logits, probabilities or the pooled embedding."""

    def __init__(self, model: nn.Module, output: str = "logits"):
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        self.model, self.output = model, output

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        feats = self.model.forward_features(clips)
        if self.output == "features":
            return self.model.forward_head(feats, pre_logits=True)
        logits = self.model.forward_head(feats)
        return torch.softmax(logits, dim=1) if self.output == "probs" else logits


def require_onnx(runtime: bool = True):
    """Import onnx (and onnxruntime) or fail with the install command."""
    missing = []
    for name in ("onnx",) + (("onnxruntime",) if runtime else ()):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise RuntimeError(f"ONNX export needs the optional package(s) {', '.join(missing)}: "
                           f"pip install {' '.join(missing)} onnxscript")


def sample_input(predictor, video: Optional[str] = None, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """Normalised clips for the parity check: the first windows of ``video``, else seeded noise."""
    if video:
        clips = []
        for _, clip in predictor.stream(video, cover_end=False):
            clips.append(clip)
            if len(clips) == batch:
                break
        while len(clips) < batch:
            clips.append(clips[-1].flip(2))
        return predictor.prepare(torch.stack(clips)).cpu()
    g = torch.Generator().manual_seed(seed)
    return torch.randn((batch, 3, predictor.num_frames, predictor.crop, predictor.crop), generator=g)


def export_torchscript(module: nn.Module, x: torch.Tensor, path: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about the input-shape check
        traced = torch.jit.trace(module, x, check_trace=False)
    traced.save(path)


def export_onnx(module: nn.Module, x: torch.Tensor, path: str, exporter: str = "dynamo", opset: int = 18) -> None:
    require_onnx(runtime=False)
    if exporter == "dynamo":
        try:
            import onnxscript  # noqa: F401
        except ImportError:
            raise RuntimeError("torch's dynamo ONNX exporter needs onnxscript: pip install onnxscript "
                               "(or use the legacy exporter: --onnx-exporter legacy)") from None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (x,), path, dynamo=True, input_names=["clips"], output_names=["output"],
                              dynamic_shapes=({0: torch.export.Dim("batch")},), external_data=False,
                              opset_version=opset, verbose=False)
    elif exporter == "legacy":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (x,), path, dynamo=False, input_names=["clips"], output_names=["output"],
                              dynamic_axes={"clips": {0: "batch"}, "output": {0: "batch"}}, opset_version=17)
    else:
        raise ValueError(f"ONNX exporter must be one of {ONNX_EXPORTERS}, got {exporter!r}")


def run_exported(path: str, x: torch.Tensor) -> np.ndarray:
    """Run an exported file (.pt TorchScript / .onnx) on CPU."""
    if path.endswith(".onnx"):
        require_onnx()
        import onnxruntime as ort

        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    m = torch.jit.load(path, map_location="cpu")
    with torch.inference_mode():
        return m(x).numpy()


def parity(module: nn.Module, path: str, x: torch.Tensor, atol: float, rtol: float) -> Dict:
    """Compare eager and exported outputs on ``x`` and on its first clip alone (dynamic batch)."""
    report = {"atol": atol, "rtol": rtol, "checks": []}
    for xb in (x, x[:1]):
        with torch.inference_mode():
            ref = module(xb).numpy()
        got = run_exported(path, xb)
        diff = float(np.max(np.abs(ref - got))) if ref.shape == got.shape else float("inf")
        ok = ref.shape == got.shape and bool(np.allclose(got, ref, atol=atol, rtol=rtol))
        report["checks"].append({"batch": int(xb.shape[0]), "shape": list(got.shape), "max_abs_diff": diff,
                                 "ok": ok})
    report["ok"] = all(c["ok"] for c in report["checks"])
    report["max_abs_diff"] = max(c["max_abs_diff"] for c in report["checks"])
    return report


def export_model(predictor, out_path: str, fmt: Optional[str] = None, output: str = "logits",
                 video: Optional[str] = None, batch: int = 2, atol: float = 1e-4, rtol: float = 1e-3,
                 onnx_exporter: str = "dynamo") -> Dict:
    """Export ``predictor``'s model to ``out_path`` and check parity; returns the sidecar document."""
    fmt = fmt or ("onnx" if out_path.endswith(".onnx") else "torchscript")
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    if fmt == "onnx":
        require_onnx()
    module = ExportHead(predictor.model, output).cpu().eval()
    x = sample_input(predictor, video, batch)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    t = time.time()
    if fmt == "onnx":
        export_onnx(module, x, out_path, onnx_exporter)
    else:
        export_torchscript(module, x, out_path)
    seconds = time.time() - t
    report = parity(module, out_path, x, atol, rtol)
    if predictor.device.type != "cpu":
        predictor.model.to(predictor.device)
    cfg = predictor.cfg
    doc = {"schema": "vidrec.export/1", "file": os.path.basename(out_path), "format": fmt, "output": output,
           "exporter": onnx_exporter if fmt == "onnx" else "torch.jit.trace", "torch": torch.__version__,
           "export_seconds": round(seconds, 2), "model": predictor.describe(),
           "input": {"name": "clips", "shape": ["N", 3, predictor.num_frames, predictor.crop, predictor.crop],
                     "dtype": "float32", "layout": "N C T H W, RGB",
                     "preprocess": "pixels / 255, minus mean, divided by std (per channel)",
                     "mean": list(cfg.DATA.MEAN), "std": list(cfg.DATA.STD),
                     "num_frames": predictor.num_frames, "sampling_rate": predictor.rate,
                     "short_side": predictor.short_side, "crop": predictor.crop},
           "class_names": predictor.class_names, "parity": report,
           "parity_input": video or "seeded random normal clips"}
    if fmt == "onnx":
        import onnx
        import onnxruntime

        doc["onnx"], doc["onnxruntime"] = onnx.__version__, onnxruntime.__version__
    atomic_write_text(out_path + ".json", json.dumps(doc, indent=1, default=str) + "\n")
    return doc
