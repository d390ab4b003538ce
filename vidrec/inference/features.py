"""Clip feature extraction: one ``.npy`` per video plus a JSON index, resumable and shardable.

For each video ``OUT/<key>.npy`` holds ``(num_clips, embed_dim)`` pooled
embeddings (``forward_head(..., pre_logits=True)``; 2048-d for 50-layer
models) of windows every ``stride`` frames; with ``stages`` also
``OUT/<key>.stage{1..4}.npy`` of shape ``(num_clips, C_i, T_i)`` (each stage's
map averaged over space). ``OUT/<key>.json`` (schema ``vidrec.features/1``)
records clip timestamps, fps, model, weights and config hash, and the
source's identity (``source``: absolute path, size, mtime_ns); it is written
last and atomically, so its presence, with matching settings *and* the source
unchanged, marks a video as done and a rerun skips it.

Keys: a video's key is its file stem, unless that name is already taken in
``OUT`` (or earlier in the same list) by another source; then it is
``<stem>-<8 hex of sha1(absolute path)>``. A source already stored keeps its
key, so adding videos never renames or recomputes the others. ``OUT/index.json``
lists exactly the stored results whose source is unchanged and whose settings
are this run's, under ``videos``; every other result (source changed or gone,
other settings, written by an older vidrec) is listed under ``stale`` with the
reason and left on disk: a rerun that includes its source recomputes it in place.

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
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..data.errors import VideoError
from ..utils.io import atomic_write_bytes, atomic_write_text, remove_stale_temp_files
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


RESERVED_KEYS = ("index",)  # OUT/index.json is the index


def source_identity(path: str) -> Optional[Dict]:
    """What a stored result must match to stand for ``path``: absolute path, size and mtime_ns
    (one stat; catches any rewrite or replacement in practice, without reading the video); None if missing."""
    apath = os.path.abspath(path)
    try:
        st = os.stat(apath)
    except OSError:
        return None
    return {"path": apath, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _read_meta(out_dir: str, key: str) -> Optional[Dict]:
    try:
        with open(os.path.join(out_dir, key + ".json"), encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("schema") == SCHEMA else None


def _source_path(meta: Dict) -> str:
    """The absolute source path a stored result claims (older results: their recorded path)."""
    return (meta.get("source") or {}).get("path") or os.path.abspath(str(meta.get("path", "")))


def video_keys(paths: Sequence[str], out_dir: Optional[str] = None) -> Dict[str, str]:
    """path -> output name (see the module docstring): the stem, or ``<stem>-<hash>`` when the stem is
    taken by another source in ``out_dir`` or earlier in ``paths``; a source stored under one of its
    candidate names keeps it. Every shard computes it on the whole list, so all name a video the same way."""
    owners: Dict[str, Optional[str]] = {k: "" for k in RESERVED_KEYS}

    def owner(key: str) -> Optional[str]:
        if key not in owners:
            meta = _read_meta(out_dir, key) if out_dir else None
            owners[key] = _source_path(meta) if meta is not None else None
        return owners[key]

    out = {}
    for p in paths:
        apath = os.path.abspath(p)
        stem = os.path.splitext(os.path.basename(p))[0] or "video"
        digest = hashlib.sha1(apath.encode()).hexdigest()
        names = [stem] + [f"{stem}-{digest[:n]}" for n in (8, 16, 40)]
        key = next((k for k in names if owner(k) == apath), None) or next((k for k in names if owner(k) is None), None)
        if key is None:
            raise ValueError(f"no free output name for {p} ({', '.join(names)} are all taken)")
        owners[key] = apath
        out[p] = key
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
        for f in remove_stale_temp_files(self.out, recursive=True):  # left by killed writes (never a live one)
            logger.info("removed stale temp file %s", f)

    def settings(self) -> Dict:
        """What must match for an existing output to count as done."""
        return {"stride_frames": self.stride, "stride_seconds": self.stride_seconds, "dtype": self.dtype,
                "stages": self.stages, "config_hash": self.p.config_hash, "weights_sha256": self.p.weights_hash}

    def _index_path(self, key: str) -> str:
        return os.path.join(self.out, key + ".json")

    def _lock(self):
        """The folder's lock file (flock it): writes of one video's files and index rebuilds hold it."""
        return open(os.path.join(self.out, ".index.lock"), "a")

    def _stale_reason(self, meta: Dict, source: Optional[Dict]) -> Optional[str]:
        """Why the stored result ``meta`` does not stand for ``source`` (its current identity); None if it does."""
        if not meta.get("source"):
            return "no source identity (written by an older vidrec)"
        if source is None:
            return f"source missing: {meta['source'].get('path')}"
        if meta["source"] != source:
            return ("source changed since extraction (size or mtime differ)" if meta["source"].get("path") ==
                    source["path"] else f"made from another source: {meta['source'].get('path')}")
        if meta.get("settings") != self.settings():
            return "made with other settings (stride, dtype, stages, config or weights)"
        files = [meta.get("features", "")] + list(meta.get("stage_files", []))
        if not all(os.path.isfile(os.path.join(self.out, n)) for n in files):
            return "feature file missing"
        return None

    def is_done(self, key: str, source: Optional[Dict]) -> bool:
        """True when ``OUT/<key>.json`` is a complete result of exactly ``source`` (:func:`source_identity`)
        with this extractor's settings."""
        meta = _read_meta(self.out, key)
        if meta is None or source is None:
            return False
        reason = self._stale_reason(meta, source)
        if reason:
            logger.info("%s: stored features do not match (%s); recomputing", key, reason)
        return reason is None

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
                "duration": stream.duration, "start_time": stream.index.start_time, "stride_frames": stream.hop, "stride_seconds": self.stride_seconds,
                "num_clips": len(wins),
                "clips": {k: [getattr(w, k) for w in wins] for k in ("start_frame", "end_frame", "start", "end")}}
        if stream.warning:
            meta["warning"] = stream.warning
        return emb, stage_maps, meta

    def save(self, key: str, emb: np.ndarray, stage_maps: List[np.ndarray], meta: Dict,
             source: Optional[Dict] = None) -> str:
        """Store one video's result under ``key``; -> the key used. ``source``: the video's identity taken
        before it was read (default: now). Under the folder lock, so a result's files always belong together;
        if another source took ``key`` meanwhile (another run into this folder), the next free name is used."""
        source = source or source_identity(meta["path"])
        apath = source["path"] if source else os.path.abspath(meta["path"])
        npy = _npy_bytes(emb)
        stages = [_npy_bytes(m) for m in stage_maps]
        with self._lock() as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            stored = _read_meta(self.out, key)
            if stored is not None and _source_path(stored) != apath:
                taken, key = key, video_keys([apath], self.out)[apath]
                logger.warning("%s is another video's result now; storing %s as %s", taken, apath, key)
            sub = os.path.dirname(key)
            if sub:
                os.makedirs(os.path.join(self.out, sub), exist_ok=True)
            atomic_write_bytes(os.path.join(self.out, key + ".npy"), npy)
            stage_files = []
            for i, data in enumerate(stages, 1):
                name = f"{key}.stage{i}.npy"
                atomic_write_bytes(os.path.join(self.out, name), data)
                stage_files.append(name)
            meta = dict(meta, key=key, source=source, features=key + ".npy", shape=list(emb.shape),
                        dtype=self.dtype, stage_files=stage_files, stage_shapes=[list(m.shape) for m in stage_maps],
                        settings=self.settings(), model=self.p.describe())
            atomic_write_text(self._index_path(key), json.dumps(jsonable(meta), allow_nan=False) + "\n")
        return key

    def run(self, paths: Sequence[str], shard: Tuple[int, int] = (0, 1), overwrite: bool = False) -> Dict:
        """Extract this shard's videos; returns {"done", "skipped", "failed": [(path, reason)],
        "warnings": [(path, warning)]}."""
        keys = video_keys(list(paths), self.out)
        mine = shard_paths(list(paths), *shard)
        fail_log = os.path.join(self.out, f"failures.shard{shard[0]}of{shard[1]}.jsonl")
        if os.path.exists(fail_log):
            os.unlink(fail_log)
        summary: Dict = {"done": 0, "skipped": 0, "failed": [], "warnings": [], "shard": list(shard),
                         "videos": len(mine)}
        for path in mine:
            key = keys[path]
            source = source_identity(path)  # before reading: a change during extraction shows as stale
            if not overwrite and self.is_done(key, source):
                summary["skipped"] += 1
                continue
            try:
                emb, stage_maps, meta = self.extract(path)
                self.save(key, emb, stage_maps, meta, source=source)
                summary["done"] += 1
                if meta.get("warning"):  # a broken stream: features of the frames before the break
                    summary["warnings"].append((path, meta["warning"]))
            except VideoError as e:
                summary["failed"].append((path, e.reason))  # the caller reports them (the CLI: one FAILED line)
                with open(fail_log, "a", encoding="utf-8") as f:
                    f.write(json.dumps({"path": path, "error": e.reason}) + "\n")
        self.write_index()
        return summary

    def write_index(self) -> str:
        """Rebuild ``index.json`` from every ``<key>.json`` (under the folder lock, so concurrent shards end
        complete): ``videos`` holds the results that match their source now and this run's settings (one per
        source), ``stale`` every other result with the reason (their files are kept)."""
        path = os.path.join(self.out, "index.json")
        with self._lock() as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            videos, stale, by_source = {}, {}, {}
            for f in sorted(glob.glob(os.path.join(self.out, "**", "*.json"), recursive=True)):
                key = os.path.relpath(f, self.out)[: -len(".json")]
                meta = _read_meta(self.out, key) if key not in RESERVED_KEYS else None
                if meta is None or meta.get("key") != key:
                    continue
                meta.pop("model", None)
                src = _source_path(meta)
                reason = self._stale_reason(meta, source_identity(src))
                if reason is None and src in by_source:
                    reason = f"duplicate of {by_source[src]}"
                if reason:
                    stale[key] = {"path": src, "reason": reason}
                else:
                    videos[key], by_source[src] = meta, key
            doc = {"schema": SCHEMA + "-index", "model": self.p.describe(), "settings": self.settings(),
                   "num_videos": len(videos), "videos": videos, "num_stale": len(stale), "stale": stale}
            atomic_write_text(path, json.dumps(jsonable(doc), allow_nan=False) + "\n")
        return path
