"""``Predictor``: load a trained model once, then label or embed many videos.

    from vidrec import Predictor
    p = Predictor("configs/kinetics_iresnet3d50.yaml", "model_final.safetensors")
    result = p.predict("video.mp4", hop_seconds=1.0, topk=5)
    result["video"]["topk"][0]       # {"class": 6, "label": "arm wrestling", "prob": 0.91}
    result["clips"][3]["start"]      # seconds

Clips come from :class:`~vidrec.inference.stream.ClipStream` (one decoding
pass, at most one window of frames in memory) and run through the model in
batches of ``batch_size`` under ``torch.inference_mode``.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..data.errors import VideoError
from ..data.transforms import to_model_input
from .stream import ClipStream

logger = logging.getLogger("vidrec.inference")

# Config keys that change what a model computes on a video (hashed into outputs).
HASHED_KEYS = {"MODEL": ("ARCH", "NUM_CLASSES", "WIDTH_MULT", "TWO_D"),
               "DATA": ("NUM_FRAMES", "SAMPLING_RATE", "SHORT_VIDEO", "TEST_SHORT_SIDE", "TEST_CROP_SIZE",
                        "MEAN", "STD")}


def config_hash(cfg) -> str:
    """Short sha256 of the config keys that affect inference outputs."""
    data = {f"{sec}.{k}": (list(cfg[sec][k]) if isinstance(cfg[sec][k], (list, tuple)) else cfg[sec][k])
            for sec, keys in HASHED_KEYS.items() for k in keys}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def file_sha256(path, n: int = 16) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:n]


def load_class_names(cfg) -> Optional[List[str]]:
    """Names from ``MODEL.CLASS_NAMES`` (one per line), checked against ``MODEL.NUM_CLASSES``; None if unset."""
    if not cfg.MODEL.CLASS_NAMES:
        return None
    from ..data.lists import find_list, read_class_names

    names = read_class_names(find_list(cfg.MODEL.CLASS_NAMES, "MODEL.CLASS_NAMES"))
    if len(names) != cfg.MODEL.NUM_CLASSES:
        raise ValueError(f"MODEL.CLASS_NAMES {cfg.MODEL.CLASS_NAMES} has {len(names)} names but "
                         f"MODEL.NUM_CLASSES is {cfg.MODEL.NUM_CLASSES}")
    return names


def compile_for_inference(fn):
    """``torch.compile`` with the weights frozen into the graph (constant-folded, prepacked
    for oneDNN on CPU), so BN/ReLU/additions fuse into the convolutions. Inference only.

    Freezing is decided when the graph is traced, from the global inductor
    config (``torch.compile(options=...)`` comes too late for it), so every
    call runs under ``config.patch(freezing=True)``.
    """
    import torch._inductor.config as inductor_config

    compiled = torch.compile(fn)

    @functools.wraps(fn)
    def run(*args, **kwargs):
        with inductor_config.patch(freezing=True):
            return compiled(*args, **kwargs)
    return run


class Predictor:
    """A trained model ready for inference (eval mode, no autograd, device chosen automatically).

    Args:
        cfg: a config node, or a config file (with ``opts`` as ``KEY VALUE`` overrides).
        weights: weight file (our checkpoints, state dicts, safetensors); default
            ``TEST.CHECKPOINT_FILE``. Keys must match the model exactly; a mismatch
            raises ``ValueError`` naming the missing / unexpected keys.
        device: "auto" (GPU when present), "cpu", "cuda" or "cuda:N"; default ``cfg.DEVICE``.
        batch_size: clips per forward pass.
        fuse_bn: fold every BatchNorm that follows a conv into it (same outputs
            within float rounding, fewer passes over memory; see models/fuse.py).
        memory_format: "auto" (channels_last_3d on CPU), "channels_last" or
            "contiguous"; default ``cfg.MEMORY_FORMAT``.
        compile: ``torch.compile`` the network (weights frozen into the graph,
            so elementwise work fuses into the convolutions). Pays off on long
            runs: compiling takes tens of seconds on a CPU, once per input shape.
            Per-stage maps (``forward(stages=True)``) stay eager.
        class_names: label names (default: read from ``MODEL.CLASS_NAMES``).

    ``Predictor.from_pretrained(folder)`` loads a model folder (written by
    training or :func:`vidrec.models.pretrained.save_pretrained`) with no config file.
    """

    def __init__(self, cfg, weights: Optional[str] = None, device: Optional[str] = None, batch_size: int = 8,
                 opts: Sequence[str] = (), fuse_bn: bool = True, memory_format: Optional[str] = None,
                 compile: bool = False, class_names: Optional[Sequence[str]] = None):
        from ..config import load_config
        from ..utils.device import memory_format as resolve_memory_format
        from ..utils.device import resolve_device
        from ..models import build_model
        from ..models.fuse import fold_batchnorm
        from ..models.weights import load_weights

        if not hasattr(cfg, "MODEL"):
            cfg = load_config(cfg, opts)
        cfg = cfg.clone()
        cfg.defrost()  # our own copy (a frozen config stays untouched)
        weights = weights or cfg.TEST.CHECKPOINT_FILE
        if not weights:
            raise ValueError("no weights given: pass a weight file (or set TEST.CHECKPOINT_FILE)")
        cfg.MODEL.INFLATE_FROM = ""  # trained weights replace any 2D initialisation
        self.cfg, self.weights = cfg, str(weights)
        dev = device or cfg.DEVICE
        self.device = torch.device(dev) if ":" in str(dev) else resolve_device(dev)
        if class_names is not None and len(class_names) != cfg.MODEL.NUM_CLASSES:
            raise ValueError(f"{len(class_names)} class names for MODEL.NUM_CLASSES={cfg.MODEL.NUM_CLASSES}")
        self.class_names = list(class_names) if class_names is not None else load_class_names(cfg)
        model = build_model(cfg)
        load_weights(model, self.weights)
        if fuse_bn:
            model = fold_batchnorm(model, inplace=True)
        self.memory_format = resolve_memory_format(memory_format or cfg.MEMORY_FORMAT, self.device)
        self.model = model.eval().to(self.device, memory_format=self.memory_format)
        # forward_features is where the compute is; the head and per-stage maps stay eager.
        self._features = compile_for_inference(self.model.forward_features) if compile else self.model.forward_features
        self.batch_size = max(1, int(batch_size))
        d = cfg.DATA
        self.num_frames, self.rate = int(d.NUM_FRAMES), int(d.SAMPLING_RATE)
        self.short_side, self.crop = int(d.TEST_SHORT_SIDE), int(d.TEST_CROP_SIZE)
        self.mean, self.std = list(d.MEAN), list(d.STD)
        self.num_classes = int(cfg.MODEL.NUM_CLASSES)
        self.embed_dim = int(self.model.num_features)
        self.config_hash = config_hash(cfg)
        self._weights_hash: Optional[str] = None

    @classmethod
    def from_pretrained(cls, directory, opts: Sequence[str] = (), **kwargs) -> "Predictor":
        """A model folder (model.safetensors + config.json): no config file or class list needed."""
        from ..models.pretrained import WEIGHTS_NAME, pretrained_config

        cfg, names = pretrained_config(directory, opts)
        return cls(cfg, str(Path(directory) / WEIGHTS_NAME), class_names=names, **kwargs)

    # ------------------------------------------------------------------ info
    @property
    def weights_hash(self) -> str:
        if self._weights_hash is None:
            self._weights_hash = file_sha256(self.weights)
        return self._weights_hash

    def describe(self) -> Dict:
        """Model facts recorded with every output."""
        return {"arch": self.cfg.MODEL.ARCH, "num_classes": self.num_classes, "width_mult": self.cfg.MODEL.WIDTH_MULT,
                "weights": self.weights, "weights_sha256": self.weights_hash, "config_hash": self.config_hash,
                "num_frames": self.num_frames, "sampling_rate": self.rate, "short_side": self.short_side,
                "crop": self.crop, "embed_dim": self.embed_dim, "device": str(self.device),
                "class_names": self.cfg.MODEL.CLASS_NAMES or None}

    def label(self, c: int) -> str:
        return self.class_names[c] if self.class_names else str(c)

    def topk(self, probs: np.ndarray, k: int) -> List[Dict]:
        k = max(1, min(int(k), probs.shape[-1]))
        order = np.argsort(-probs, kind="stable")[:k]
        return [{"class": int(c), "label": self.label(int(c)), "prob": round(float(probs[c]), 6)} for c in order]

    # ---------------------------------------------------------------- model
    def prepare(self, clips_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 (B, T, H, W, 3) -> normalised float (B, 3, T, H, W) on the model's device."""
        return to_model_input(clips_uint8, self.device, self.mean, self.std, self.memory_format)

    @torch.inference_mode()
    def forward(self, x: torch.Tensor, features: bool = False, stages: bool = False) -> Dict[str, torch.Tensor]:
        """Normalised clips -> {"probs"} (+ "features": pooled embedding, "stages": per-stage
        spatially pooled maps (B, C_i, T_i)), all on the CPU as float32."""
        x = x.to(self.device, memory_format=self.memory_format) if x.dim() == 5 else x  # else: the model says why
        out = {}
        if stages:
            maps = self.model.forward_stages(x)
            feat_map = maps[-1]
            out["stages"] = [m.float().mean(dim=(3, 4)).cpu() for m in maps]
        else:
            feat_map = self._features(x)
        emb = self.model.forward_head(feat_map, pre_logits=True)
        logits = self.model.forward_head(feat_map)
        out["probs"] = torch.softmax(logits.float(), dim=1).cpu()
        if features:
            out["features"] = emb.float().cpu()
        return out

    def probs(self, clips_uint8: torch.Tensor) -> np.ndarray:
        """Softmax of uint8 clips (B, T, H, W, 3) -> (B, num_classes)."""
        return self.forward(self.prepare(clips_uint8))["probs"].numpy()

    # ---------------------------------------------------------------- videos
    def stream(self, path, hop: Optional[int] = None, hop_seconds: Optional[float] = None,
               cover_end: bool = True) -> ClipStream:
        try:
            return ClipStream(path, self.num_frames, self.rate, self.short_side, self.crop, hop=hop,
                              hop_seconds=hop_seconds, cover_end=cover_end, short=self.cfg.DATA.SHORT_VIDEO,
                              partial=self.cfg.DATA.PARTIAL_VIDEO)
        except ValueError as e:  # e.g. a hop in seconds on a video without a frame rate
            raise VideoError(path, str(e)) from None

    def run_stream(self, stream: ClipStream, features: bool = False, stages: bool = False
                   ) -> Iterator[Tuple[list, Dict[str, torch.Tensor]]]:
        """Batches of (windows, model outputs) over a clip stream."""
        pending_w, pending_c = [], []
        for w, clip in stream:
            pending_w.append(w)
            pending_c.append(clip)
            if len(pending_c) == self.batch_size:
                yield pending_w, self.forward(self.prepare(torch.stack(pending_c)), features, stages)
                pending_w, pending_c = [], []
        if pending_c:
            yield pending_w, self.forward(self.prepare(torch.stack(pending_c)), features, stages)

    def predict(self, path, hop: Optional[int] = None, hop_seconds: Optional[float] = None, topk: int = 5,
                multiview: bool = False, cover_end: bool = True, return_probs: bool = False) -> Dict:
        """Label one video: every window's top-k plus a video-level top-k.

        The video-level prediction averages the windows' softmax, or with
        ``multiview`` uses the evaluation protocol (TEST.NUM_ENSEMBLE_VIEWS x
        TEST.NUM_SPATIAL_CROPS views, 10 x 3 = 30 by default). Raises
        :class:`~vidrec.data.VideoError` for unreadable videos.
        """
        stream = self.stream(path, hop, hop_seconds, cover_end)
        clips, all_probs = [], []
        for ws, out in self.run_stream(stream):
            p = out["probs"].numpy()
            all_probs.append(p)
            clips += [dict(w.as_dict(), topk=self.topk(p[i], topk)) for i, w in enumerate(ws)]
        probs = np.concatenate(all_probs)
        res = {"path": str(path), "ok": True, "fps": stream.fps, "num_frames": stream.num_frames_decoded,
               "duration": stream.duration, "start_time": stream.index.start_time, "hop_frames": stream.hop,
               "hop_seconds": hop_seconds, "num_clips": len(clips), "clips": clips}
        if multiview:
            video_probs, nviews = self.multiview_probs(path)
            method = f"{self.cfg.TEST.NUM_ENSEMBLE_VIEWS}x{self.cfg.TEST.NUM_SPATIAL_CROPS}-view"
        else:
            video_probs, nviews, method = probs.mean(0), len(clips), "mean_clip_softmax"
        res["video"] = {"method": method, "num_views": nviews, "topk": self.topk(video_probs, topk)}
        if stream.warning:
            res["warning"] = stream.warning
        res["stats"] = dict(stream.stats)
        if return_probs:
            res["clip_probs"], res["video_probs"] = probs, video_probs
        return res

    def multiview_probs(self, path) -> Tuple[np.ndarray, int]:
        """Video softmax under the test protocol: the evaluator's views (same frames, same crops)."""
        from ..data.datasets import load_test_views
        from ..data.decoders import decoder_order

        d, t = self.cfg.DATA, self.cfg.TEST
        views, _ = load_test_views(str(path), d.NUM_FRAMES, d.SAMPLING_RATE, t.NUM_ENSEMBLE_VIEWS,
                                   t.NUM_SPATIAL_CROPS, d.TEST_SHORT_SIDE, d.TEST_CROP_SIZE, d.SHORT_VIDEO,
                                   decoder_order(list(d.DECODER), d.DECODER_FALLBACK), d.PARTIAL_VIDEO)
        probs = [self.forward(self.prepare(views[i:i + self.batch_size]))["probs"].numpy()
                 for i in range(0, len(views), self.batch_size)]
        probs = np.concatenate(probs)
        return probs.mean(0), len(probs)

    def predict_many(self, paths: Sequence[str], **kwargs) -> Iterator[Dict]:
        """``predict`` each video; an unreadable one gives ``{"path", "ok": False, "error"}`` and the rest go on."""
        for path in paths:
            try:
                yield self.predict(path, **kwargs)
            except VideoError as e:
                yield {"path": str(path), "ok": False, "error": e.reason}

