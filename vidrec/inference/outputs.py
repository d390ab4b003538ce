"""Prediction outputs: one JSON document per run, optional CSV, a terminal summary.

JSON (``schema`` = ``vidrec.predictions/1``)::

    {"schema": "vidrec.predictions/1", "created": ISO time, "model": {...Predictor.describe()},
     "settings": {"hop_frames" | "hop_seconds", "topk", "multiview", "cover_end"},
     "videos": [{"path", "ok": true, "fps", "num_frames", "duration", "hop_frames", "num_clips",
                 "clips": [{"index", "start_frame", "end_frame", "start", "end",
                            "topk": [{"class", "label", "prob"}, ...]}, ...],
                 "video": {"method", "num_views", "topk": [...]}, "warning"?: str, "stats": {...}},
                {"path", "ok": false, "error": "reason"}],
     "summary": {"videos", "ok", "failed"}}

Times are seconds; ``end_frame`` is exclusive. Unknown values (a video
without a frame rate) are ``null``. CSV has one row per (clip or video, rank).
"""
from __future__ import annotations

import csv
import datetime
import io
import json
import math
from typing import Dict, Iterable, List

from ..utils.io import atomic_write_text
from ..utils.text import plural

SCHEMA = "vidrec.predictions/1"
CSV_FIELDS = ["path", "level", "clip", "start", "end", "start_frame", "end_frame", "rank", "class", "label", "prob"]


def jsonable(obj):
    """Plain JSON values: NaN/inf -> None, numpy scalars -> Python, private arrays dropped."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items() if k not in ("clip_probs", "video_probs")}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def make_document(model: Dict, settings: Dict, videos: List[Dict]) -> Dict:
    ok = sum(1 for v in videos if v.get("ok"))
    return {"schema": SCHEMA, "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "model": model, "settings": settings, "videos": videos,
            "summary": {"videos": len(videos), "ok": ok, "failed": len(videos) - ok}}


def write_json(path: str, doc: Dict) -> None:
    atomic_write_text(path, json.dumps(jsonable(doc), indent=1, allow_nan=False) + "\n")


def csv_rows(videos: Iterable[Dict]) -> Iterable[Dict]:
    for v in videos:
        if not v.get("ok"):
            continue
        for c in v["clips"]:
            for r, t in enumerate(c["topk"], 1):
                yield {"path": v["path"], "level": "clip", "clip": c["index"], "start": c["start"], "end": c["end"],
                       "start_frame": c["start_frame"], "end_frame": c["end_frame"], "rank": r, **t}
        for r, t in enumerate(v["video"]["topk"], 1):
            yield {"path": v["path"], "level": "video", "clip": "", "start": 0.0, "end": v.get("duration"),
                   "start_frame": 0, "end_frame": v["num_frames"], "rank": r, **t}


def write_csv(path: str, videos: Iterable[Dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for row in csv_rows(videos):
        w.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v) for k, v in jsonable(row).items()})
    atomic_write_text(path, buf.getvalue())


def _fmt_t(t) -> str:
    return "?" if t is None or (isinstance(t, float) and not math.isfinite(t)) else f"{t:7.2f}"


def format_video(v: Dict, max_clips: int = 20) -> str:
    """Human-readable top-k of one video (long timelines are elided in the middle)."""
    if not v.get("ok"):
        return f"FAILED {v['path']}: {v['error']}"
    top = ", ".join(f"{t['label']} {t['prob']:.3f}" for t in v["video"]["topk"])
    dur = "?" if v.get("duration") is None or not math.isfinite(v["duration"]) else f"{v['duration']:.2f}s"
    lines = [f"{v['path']}  ({plural(v['num_frames'], 'frame')}, {dur}, {plural(v['num_clips'], 'clip')}, "
             f"{v['video']['method']})",
             f"  video: {top}"]
    clips = v["clips"]
    shown = clips if len(clips) <= max_clips else clips[: max_clips // 2] + [None] + clips[-max_clips // 2:]
    for c in shown:
        if c is None:
            lines.append(f"  ... {plural(len(clips) - 2 * (max_clips // 2), 'more clip')} ...")
            continue
        tk = ", ".join(f"{t['label']} {t['prob']:.3f}" for t in c["topk"])
        lines.append(f"  [{_fmt_t(c['start'])} - {_fmt_t(c['end'])}s] {tk}")
    if v.get("warning"):
        lines.append(f"  warning: {v['warning']}")
    return "\n".join(lines)
