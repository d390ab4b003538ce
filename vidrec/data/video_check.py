"""Probe many videos in parallel and write a report plus a quarantine list.

Each video is probed in a worker process (a crash or hang cannot take the
caller down) under a per-video time limit (:mod:`vidrec.utils.time_limit`).
"""
from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from .decoders import VideoError, probe
from .lists import VIDEO_EXTS
from ..utils.parallel import codec_threads, default_workers, process_map
from ..utils.time_limit import TimeLimitExceeded, time_limit
from ..utils.text import plural

logger = logging.getLogger("vidrec.data")
FIELDS = ["path", "ok", "status", "reason", "frames", "fps", "width", "height", "duration", "backend"]


def check_one(path: str, timeout: float = 60.0, backend="decord", partial: str = "keep", threads: int = 0) -> Dict:
    """Probe one video -> a report row (never raises for a bad video).

    ``status``: "ok", "partial" (the stream breaks; training, testing and prediction use
    the frames before the break, as here, with ``partial="keep"``) or "failed".
    """
    row = dict.fromkeys(FIELDS, "")
    row.update(path=str(path), ok=False, status="failed")
    try:
        with time_limit(timeout):
            info = probe(path, backend=backend, partial=partial, threads=threads)
        notes = [info[k] for k in ("warning", "note") if info.get(k)]
        if "fallback_reason" in info:
            notes.append("decoded by fallback: " + info["fallback_reason"])
        notes += [f"{k} refused: {v}" for k, v in info.get("refused", {}).items()]
        row.update(ok=True, status=info["status"], frames=info["num_frames"], fps=round(info["fps"], 3),
                   width=info["width"], height=info["height"], duration=round(info["duration"], 3),
                   backend=info["backend"], reason="; ".join(notes))
    except VideoError as e:
        row["reason"] = e.reason
    except TimeLimitExceeded:
        row["reason"] = f"timeout: probing took more than {timeout:g} s"
    except Exception as e:  # never let one file stop the scan
        row["reason"] = f"{type(e).__name__}: {e}"
    return row


def _check_star(args):
    return check_one(*args)


def write_report(rows: List[Dict], path) -> None:
    """CSV or JSON (by extension) with one row per video."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(rows, indent=1))
    else:
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS)
            w.writeheader()
            w.writerows(rows)


def check_videos(paths: Iterable[str], workers: int = 0, timeout: float = 60.0, report: Optional[str] = None,
                 quarantine: Optional[str] = None, backend="decord", progress: bool = True,
                 partial: str = "keep") -> List[Dict]:
    """Probe ``paths`` with a process pool -> rows (input order); optionally write the
    report and the quarantine list (failed paths, one per line); logs a summary."""
    paths = [str(p) for p in paths]
    workers = workers or default_workers(len(paths))
    rows = process_map(_check_star, [(p, timeout, backend, partial, codec_threads(workers)) for p in paths],
                       workers, progress, desc="checking videos")
    if report:
        write_report(rows, report)
    if quarantine:
        Path(quarantine).parent.mkdir(parents=True, exist_ok=True)
        Path(quarantine).write_text("".join(r["path"] + "\n" for r in rows if not r["ok"]))
    logger.info(summary_line(rows))
    return rows


def summary_line(rows: List[Dict]) -> str:
    bad = sum(not r["ok"] for r in rows)
    fb = sum(bool(r["ok"] and "decoded by fallback" in r["reason"]) for r in rows)
    part = sum(r.get("status") == "partial" for r in rows)
    return (f"checked {plural(len(rows), 'video')}: {len(rows) - bad} ok, {bad} failed"
            f" ({bad / max(1, len(rows)):.1%}), {part} partial (stream breaks; the frames before the break are used),"
            f" {fb} readable only by the fallback decoder")


def collect_paths(inputs: Iterable[str], root: str = "", allow_outside: bool = False,
                  opt_out: str = "pass allow_outside=True") -> List[str]:
    """Video paths from video files (as given, missing ones kept so they are reported), folders
    (recursive), official Kinetics CSVs (every row's expected file, missing ones included) or
    ``path label`` lists. Order kept, duplicates dropped. A missing folder or list, or a file that
    is neither a video (by its extension) nor a text list, is a :class:`ListError`.

    Like the datasets (:func:`~vidrec.data.lists.resolve_under`), list entries must stay inside
    ``root`` (the working directory when empty), and the files found in a folder inside that
    folder, symlinks resolved; one that leaves is a :class:`ListError` unless ``allow_outside``."""
    return [path for path, _ in collect_inputs(inputs, root, allow_outside, opt_out)]


def collect_inputs(inputs: Iterable[str], root: str = "", allow_outside: bool = False,
                   opt_out: str = "pass allow_outside=True") -> List[Tuple[str, str]]:
    """:func:`collect_paths` with each path's place in its tree: ``(path, relative path)``, relative
    to ``root`` for list entries and for files and folders inside it, else to the folder a file was
    found in; the bare name for the rest (video files outside ``root``, absolute or ``..`` entries
    allowed by ``allow_outside``). What ``prepare`` keeps under its output root."""
    from .inputs import is_video_file, videos_under
    from .lists import ListError, is_kinetics_csv, read_path_label_list, resolve_under

    def in_tree(rel: str) -> str:
        rel = os.path.normpath(rel)
        return os.path.basename(rel) if os.path.isabs(rel) or rel.split(os.sep)[0] == os.pardir else rel

    def under_root(path: str) -> str:
        """``path`` relative to ``root``; "" without a root or outside it."""
        rel = os.path.normpath(os.path.relpath(os.path.abspath(path), os.path.abspath(root))) if root else os.pardir
        return "" if rel.split(os.sep)[0] == os.pardir else rel

    def held(base: str, rels: List[str]) -> List[Tuple[str, str]]:
        for r in rels:
            resolve_under(base, r, allow_outside, opt_out)
        return [(os.path.join(base, r), in_tree(r)) for r in rels]

    out: List[Tuple[str, str]] = []
    for inp in inputs:
        under = under_root(inp)
        if os.path.isdir(inp):
            out += [(p, os.path.normpath(os.path.join(under, rel))) for p, rel in
                    held(inp, [os.path.relpath(p, inp) for p in videos_under(inp)])]
        elif is_video_file(inp):
            out.append((inp, under or in_tree(inp)))
        elif not os.path.isfile(inp):
            raise ListError(f"not found: {inp} (give video files, folders or lists)")
        else:
            try:
                if is_kinetics_csv(inp):
                    from .lists import read_kinetics_csv
                    rel, _, missing = read_kinetics_csv(inp, root or ".")
                    out += held(root, rel) + held(root, [m + ".mp4" for m in missing])
                else:
                    out += held(root, read_path_label_list(inp)[0])
            except UnicodeDecodeError:
                raise ListError(f"{inp}: not a text list (video files need one of the extensions "
                                f"{', '.join(VIDEO_EXTS)})") from None
    first: Dict[str, str] = {}
    for path, rel in out:
        first.setdefault(path, rel)
    return list(first.items())
