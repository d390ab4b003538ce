"""Probe every video of a list / folder in parallel; write a report and a quarantine list.

Examples:
  vidrec check-videos data_lists/k400_train.csv --root /data/k400 --report check.csv --quarantine bad.txt
  vidrec check-videos /data/videos --workers 8 --timeout 30
"""
import argparse
import logging

from .common import one_line_errors


@one_line_errors
def main(argv=None, prog=None) -> int:
    from ..data.video_check import check_videos, collect_paths, summary_line

    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", help="'path label' lists (CSV/space separated), official Kinetics CSVs, "
                   "or folders (searched recursively for video files)")
    p.add_argument("--root", default="", help="data root that relative list paths are resolved against")
    p.add_argument("--workers", type=int, default=0, help="probe processes (default: number of CPUs)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds allowed per video")
    p.add_argument("--backend", default="decord", choices=["decord", "pyav"], help="decoder the training will use")
    p.add_argument("--report", default="video_check.csv", help="report file (.csv or .json)")
    p.add_argument("--quarantine", default="quarantine.txt", help="file listing the paths that failed")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    paths = collect_paths(a.inputs, a.root)
    rows = check_videos(paths, workers=a.workers, timeout=a.timeout, report=a.report, quarantine=a.quarantine,
                        backend=a.backend)
    print(summary_line(rows) + f"; report: {a.report}, quarantine: {a.quarantine}")
    return 0 if all(r["ok"] for r in rows) else 1

