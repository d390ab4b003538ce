"""Probe videos in parallel (files, folders, lists); write a report and a quarantine list.

Examples:
  vidrec check-videos data_lists/k400_train.csv --root /data/k400 --report check.csv --quarantine bad.txt
  vidrec check-videos /data/videos --workers 8 --timeout 30
  vidrec check-videos clip.mp4 other.webm

Each video that fails prints one 'FAILED path: reason' line; the summary follows.
"""
import argparse
import logging
import sys

from .common import EXIT_OK, EXIT_PARTIAL, add_common_args, fail, one_line_errors


@one_line_errors
def main(argv=None, prog=None) -> int:
    from ..data.video_check import check_videos, collect_paths, summary_line

    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("inputs", nargs="+", help="video files, folders (searched recursively for video files), "
                   "'path label' lists (CSV/space separated) or official Kinetics CSVs")
    p.add_argument("--root", default="", help="data root that relative list paths are resolved against")
    p.add_argument("--workers", type=int, default=0, help="probe processes (default: number of CPUs)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds allowed per video")
    p.add_argument("--backend", nargs="+", default=["decord", "pyav"], metavar="NAME",
                   help="decoders in the order training tries them (DATA.DECODER; default: decord pyav)")
    p.add_argument("--partial", default="keep", choices=["keep", "fail"],
                   help="a stream that breaks: keep = usable (status partial, the frames before the break; "
                        "DATA.PARTIAL_VIDEO keep, the default), fail = a failed video")
    p.add_argument("--allow-outside-root", action="store_true",
                   help="accept list entries (or symlinks) that resolve outside --root (DATA.ALLOW_OUTSIDE_ROOT)")
    p.add_argument("--report", default="video_check.csv", help="report file (.csv or .json)")
    p.add_argument("--quarantine", default="quarantine.txt", help="file listing the paths that failed")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")  # the summary is printed below
    paths = collect_paths(a.inputs, a.root, allow_outside=a.allow_outside_root, opt_out="pass --allow-outside-root")
    if not paths:
        return fail(f"no video files found in {' '.join(a.inputs)}")
    rows = check_videos(paths, workers=a.workers, timeout=a.timeout, report=a.report, quarantine=a.quarantine,
                        backend=a.backend, partial=a.partial)
    for r in rows:
        if not r["ok"]:
            print(f"FAILED {r['path']}: {r['reason']}", file=sys.stderr)
        elif r["status"] == "partial":
            print(f"WARNING {r['path']}: {r['reason']}", file=sys.stderr)
    print(summary_line(rows) + f"; report: {a.report}, quarantine: {a.quarantine}")
    return EXIT_OK if all(r["ok"] for r in rows) else EXIT_PARTIAL

