"""Probe many videos in parallel and write a report plus a quarantine list.

Each video is probed in a worker process (a crash or hang cannot take the
caller down) under a per-video time limit (SIGALRM in the worker: decoding
returns to Python after every frame, so slow files are cut off).
"""
from __future__ import annotations

import csv
import json
import logging
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from .decoders import VideoError, probe

logger = logging.getLogger("vidrec.data")
FIELDS = ["path", "ok", "reason", "frames", "fps", "width", "height", "duration", "backend"]


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def check_one(path: str, timeout: float = 60.0, backend: str = "decord") -> Dict:
    """Probe one video -> a report row (never raises for a bad video)."""
    row = dict.fromkeys(FIELDS, "")
    row.update(path=str(path), ok=False)
    use_alarm = timeout and hasattr(signal, "SIGALRM")
    if use_alarm:
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        info = probe(path, backend=backend)
        row.update(ok=True, frames=info["num_frames"], fps=round(info["fps"], 3), width=info["width"],
                   height=info["height"], duration=round(info["duration"], 3), backend=info["backend"],
                   reason=("decoded by fallback: " + info["fallback_reason"]) if "fallback_reason" in info else "")
    except VideoError as e:
        row["reason"] = e.reason
    except _Timeout:
        row["reason"] = f"timeout: probing took more than {timeout:g} s"
    except Exception as e:  # never let one file stop the scan
        row["reason"] = f"{type(e).__name__}: {e}"
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
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
                 quarantine: Optional[str] = None, backend: str = "decord", progress: bool = True) -> List[Dict]:
    """Probe ``paths`` with a process pool -> rows (input order); optionally write the
    report and the quarantine list (failed paths, one per line); logs a summary."""
    paths = [str(p) for p in paths]
    workers = workers or min(len(paths), os.cpu_count() or 1) or 1
    jobs = [(p, timeout, backend) for p in paths]
    if workers <= 1:
        it = map(_check_star, jobs)
        pool = None
    else:
        pool = ProcessPoolExecutor(max_workers=workers)
        it = pool.map(_check_star, jobs, chunksize=1)
    try:
        if progress:
            from tqdm import tqdm
            it = tqdm(it, total=len(paths), desc="checking videos", unit="video")
        rows = list(it)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if report:
        write_report(rows, report)
    if quarantine:
        Path(quarantine).parent.mkdir(parents=True, exist_ok=True)
        Path(quarantine).write_text("".join(r["path"] + "\n" for r in rows if not r["ok"]))
    logger.info(summary_line(rows))
    return rows


def summary_line(rows: List[Dict]) -> str:
    bad = sum(not r["ok"] for r in rows)
    fb = sum(bool(r["ok"] and r["reason"]) for r in rows)
    return (f"checked {len(rows)} videos: {len(rows) - bad} ok, {bad} failed"
            f" ({bad / max(1, len(rows)):.1%}), {fb} readable only by the fallback decoder")


def collect_paths(inputs: Iterable[str], root: str = "") -> List[str]:
    """Video paths from folders (recursive), official Kinetics CSVs (every row's expected
    file, missing ones included so they are reported) or ``path label`` lists."""
    from .lists import VIDEO_EXTS, is_kinetics_csv, read_path_label_list

    out: List[str] = []
    for inp in inputs:
        if os.path.isdir(inp):
            for dp, _, files in sorted(os.walk(inp)):
                out += [os.path.join(dp, f) for f in sorted(files) if f.lower().endswith(VIDEO_EXTS)]
        elif is_kinetics_csv(inp):
            from .lists import read_kinetics_csv
            rel, _, missing = read_kinetics_csv(inp, root or ".")
            out += [os.path.join(root, r) for r in rel] + [os.path.join(root, m + ".mp4") for m in missing]
        else:
            out += [os.path.join(root, r) for r in read_path_label_list(inp)[0]]
    return out
