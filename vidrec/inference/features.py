"""Clip feature extraction: one ``.npy`` per video plus a JSON index, resumable and shardable.

For each video ``OUT/<key>.npy`` holds ``(num_clips, embed_dim)`` pooled
embeddings (``forward_head(..., pre_logits=True)``; 2048-d for 50-layer
models) of windows every ``stride`` frames; with ``stages`` also
``OUT/<key>.stage{1..4}.npy`` of shape ``(num_clips, C_i, T_i)`` (each stage's
map averaged over space). ``OUT/<key>.json`` (schema ``vidrec.features/1``)
records clip timestamps, fps, model, weights and config hash; it is written
last and atomically, so its presence (with matching settings) marks a video
as done and a rerun skips it. ``OUT/index.json`` merges all of them.

Sharding: video ``j`` of the input list (same order in every shard) belongs to shard ``j % n``; the shard
comes from ``--shard i/n`` or torchrun's ``RANK``/``WORLD_SIZE``.
"""
from __future__ import annotations

import fcntl
import glob
import hashlib
import io
import json
import logging
import math
import os
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..data.decoders import VideoError
from ..utils.io import atomic_write_bytes, atomic_write_text
from .outputs import jsonable

logger = logging.getLogger("vidrec.inference")
SCHEMA = "vidrec.features/1"
DTYPES = ("float16", "float32")


def parse_shard(text: Optional[str]) -> Tuple[int, int]:
    """'i/n' -> (i, n); None -> torchrun's RANK/WORLD_SIZE, else (0, 1)."""
    if not text:
        return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"--shard {text}: need 0 <= i < n")
    return i, n


def shard_paths(paths: Sequence[str], index: int, count: int) -> List[str]:
    return list(paths)[index::count]


def video_keys(paths: Sequence[str]) -> Dict[str, str]:
    """path -> output name: the file stem, plus a short hash of the full path where stems collide.
    Computed on the whole list, so every shard names a video the same way."""
    stems = [os.path.splitext(os.path.basename(p))[0] or "video" for p in paths]
    count = Counter(stems)
    out = {}
    for p, s in zip(paths, stems):
        out[p] = s if count[s] == 1 else f"{s}-{hashlib.sha1(os.path.abspath(p).encode()).hexdigest()[:8]}"
    return out


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


class FeatureExtractor:
    """Extract features of many videos with one :class:`~vidrec.inference.Predictor`."""

    def __init__(self, predictor, out_dir: str, stride: Optional[int] = None,
                 stride_seconds: Optional[float] = None, dtype: str = "float16", stages: bool = False):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        self.p, self.out = predictor, str(out_dir)
        self.stride, self.stride_seconds, self.dtype, self.stages = stride, stride_seconds, dtype, bool(stages)
        os.makedirs(self.out, exist_ok=True)

    def settings(self) -> Dict:
        """What must match for an existing output to count as done."""
        return {"stride_frames": self.stride, "stride_seconds": self.stride_seconds, "dtype": self.dtype,
                "stages": self.stages, "config_hash": self.p.config_hash, "weights_sha256": self.p.weights_hash}

    def _index_path(self, key: str) -> str:
        return os.path.join(self.out, key + ".json")

    def is_done(self, key: str) -> bool:
        try:
            with open(self._index_path(key), encoding="utf-8") as f:
                meta = json.load(f)
        except (OSError, ValueError):
            return False
        if meta.get("settings") != self.settings():
            logger.info("%s: existing features were made with other settings; recomputing", key)
            return False
        return all(os.path.isfile(os.path.join(self.out, n)) for n in [meta["features"]] + meta.get("stage_files", []))

    def extract(self, path: str) -> Tuple[np.ndarray, List[np.ndarray], Dict]:
        """Features of one video in memory -> (embeddings, per-stage maps, metadata)."""
        stream = self.p.stream(path, hop=self.stride, hop_seconds=self.stride_seconds, cover_end=False)
        feats, stage_parts, wins = [], [], []
        for ws, out in self.p.run_stream(stream, features=True, stages=self.stages):
            wins += ws
            feats.append(out["features"].numpy())
            if self.stages:
                stage_parts.append([s.numpy() for s in out["stages"]])
        emb = np.concatenate(feats).astype(self.dtype)
        stage_maps = [np.concatenate([part[i] for part in stage_parts]).astype(self.dtype)
                      for i in range(len(stage_parts[0]))] if self.stages else []
        fps, n = stream.fps, stream.num_frames_decoded
        meta = {"schema": SCHEMA, "path": str(path), "fps": fps, "num_frames": n,
                "duration": n / fps if fps else math.nan, "stride_frames": stream.hop, "num_clips": len(wins),
                "clips": {k: [getattr(w, k) for w in wins] for k in ("start_frame", "end_frame", "start", "end")}}
        if stream.warning:
            meta["warning"] = stream.warning
        return emb, stage_maps, meta

    def save(self, key: str, emb: np.ndarray, stage_maps: List[np.ndarray], meta: Dict) -> None:
        sub = os.path.dirname(key)
        if sub:
            os.makedirs(os.path.join(self.out, sub), exist_ok=True)
        atomic_write_bytes(os.path.join(self.out, key + ".npy"), _npy_bytes(emb))
        stage_files = []
        for i, m in enumerate(stage_maps, 1):
            name = f"{key}.stage{i}.npy"
            atomic_write_bytes(os.path.join(self.out, name), _npy_bytes(m))
            stage_files.append(name)
        meta = dict(meta, key=key, features=key + ".npy", shape=list(emb.shape), dtype=self.dtype,
                    stage_files=stage_files, stage_shapes=[list(m.shape) for m in stage_maps],
                    settings=self.settings(), model=self.p.describe())
        atomic_write_text(self._index_path(key), json.dumps(jsonable(meta), allow_nan=False) + "\n")

    def run(self, paths: Sequence[str], shard: Tuple[int, int] = (0, 1), overwrite: bool = False) -> Dict:
        """Extract this shard's videos; returns {"done", "skipped", "failed": [(path, reason)]}."""
        keys = video_keys(list(paths))
        mine = shard_paths(list(paths), *shard)
        fail_log = os.path.join(self.out, f"failures.shard{shard[0]}of{shard[1]}.jsonl")
        if os.path.exists(fail_log):
            os.unlink(fail_log)
        summary: Dict = {"done": 0, "skipped": 0, "failed": [], "shard": list(shard), "videos": len(mine)}
        for path in mine:
            key = keys[path]
            if not overwrite and self.is_done(key):
                summary["skipped"] += 1
                continue
            try:
                self.save(key, *self.extract(path))
                summary["done"] += 1
            except VideoError as e:
                summary["failed"].append((path, e.reason))
                logger.error("FAILED %s: %s", path, e.reason)
                with open(fail_log, "a", encoding="utf-8") as f:
                    f.write(json.dumps({"path": path, "error": e.reason}) + "\n")
        self.write_index()
        return summary

    def write_index(self) -> str:
        """Merge every ``<key>.json`` into ``index.json`` (under a lock, so concurrent shards end complete)."""
        path = os.path.join(self.out, "index.json")
        with open(os.path.join(self.out, ".index.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            videos = {}
            for f in sorted(glob.glob(os.path.join(self.out, "**", "*.json"), recursive=True)):
                if os.path.basename(f) == "index.json":
                    continue
                try:
                    with open(f, encoding="utf-8") as fh:
                        meta = json.load(fh)
                except (OSError, ValueError):
                    continue
                if meta.get("schema") == SCHEMA:
                    meta.pop("model", None)
                    videos[meta["key"]] = meta
            doc = {"schema": SCHEMA + "-index", "model": self.p.describe(), "settings": self.settings(),
                   "num_videos": len(videos), "videos": videos}
            atomic_write_text(path, json.dumps(jsonable(doc), allow_nan=False) + "\n")
        return path
