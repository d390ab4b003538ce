"""Re-encode a dataset for fast training: short side 320 (or 256), frequent key frames, optional fps cap.

Training time goes into decoding: a 720p or 1080p source decodes several times slower than a
copy at the training resolution (DATA.TRAIN_JITTER_SCALES 256-320). The copies keep the relative
paths (and names) of their sources under --out, so the same list works with
DATA.PATH_TO_DATA_DIR set to the new root.

Examples:
  vidrec prepare data_lists/k400_train.csv --root /data/k400 --out /data/k400_320
  vidrec prepare /data/videos --out /data/videos_256 --short-side 256 --jobs 8
  vidrec prepare clip.mp4 other.webm --out prepared --max-fps 15

  then train with: DATA.PATH_TO_DATA_DIR /data/k400_320 (the same DATA.TRAIN_LIST)

Each copy: H.264 yuv420p in an MP4 container (whatever the name's extension: FFmpeg-based
readers go by the content), upright (a display rotation is applied to the pixels), the
source's frame times, no audio. Sources with a shorter side already <= --short-side keep
their size (never upscaled). It is written to a temp file, verified by decoding it, then
renamed into place, so an interrupted run leaves no half-written copies; rerunning skips the
copies made from the same source with the same settings and redoes the others.

Each video that fails prints one 'FAILED path: reason' line (the others go on); the summary
follows. The report (JSON: per video sizes, frames, seconds, status) goes to
OUT/prepare_report.json.
"""
import argparse
import logging
import os
import sys

from .common import EXIT_OK, EXIT_PARTIAL, add_common_args, fail, one_line_errors


@one_line_errors
def main(argv=None, prog=None) -> int:
    from ..data.prepare import (BASE_SECONDS, REPORT_NAME, SECONDS_PER_VIDEO_SECOND, X264_PRESETS, Settings,
                                prepare_videos, summary_line)
    from ..data.video_check import collect_inputs

    d = Settings()
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("inputs", nargs="+", help="video files, folders (searched recursively for video files), "
                   "'path label' lists (CSV/space separated) or official Kinetics CSVs")
    p.add_argument("--out", required=True, metavar="DIR", help="root of the prepared copies (not the source root)")
    p.add_argument("--root", default="", help="data root that relative list paths are resolved against "
                   "(and that video files given by name keep their place under)")
    p.add_argument("--short-side", type=int, default=d.short_side, metavar="PX",
                   help=f"shorter display side of the copies, even (default {d.short_side}: the top of "
                        "DATA.TRAIN_JITTER_SCALES; 256 = DATA.TEST_SHORT_SIDE suits val/test-only data)")
    p.add_argument("--max-fps", type=float, default=d.max_fps, metavar="FPS",
                   help="keep at most this many frames a second (default: every frame). Clips are frame ids "
                        "DATA.SAMPLING_RATE apart, so a lower rate makes each clip span more time")
    p.add_argument("--keyint", type=int, default=d.keyint, metavar="N",
                   help=f"frames from one key frame to the next (default {d.keyint}): a clip is decoded from the "
                        "key frame before it, so smaller is faster to read, larger is smaller on disk")
    p.add_argument("--crf", type=int, default=d.crf, help=f"x264 quality, lower is better and larger (default {d.crf})")
    p.add_argument("--preset", default=d.preset, choices=X264_PRESETS, metavar="PRESET",
                   help=f"x264 speed preset: {', '.join(X264_PRESETS)} (default {d.preset})")
    p.add_argument("--no-fast-decode", dest="fast_decode", action="store_false",
                   help="without x264 tune=fastdecode: about 15%% smaller files, slower to decode")
    p.add_argument("--partial", default=d.partial, choices=["keep", "fail"],
                   help="a source whose stream breaks: keep = copy the frames before the break (what training "
                        "reads with DATA.PARTIAL_VIDEO keep), fail = a failed video")
    p.add_argument("--jobs", "--workers", dest="jobs", type=int, default=0,
                   help="parallel processes (default: number of CPUs)")
    p.add_argument("--allow-outside-root", action="store_true",
                   help="accept list entries (or symlinks) that resolve outside --root (DATA.ALLOW_OUTSIDE_ROOT)")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help=f"seconds allowed per video before it fails as a timeout (default: {BASE_SECONDS:g} + "
                        f"{SECONDS_PER_VIDEO_SECOND:g} per second of video; 0: no limit)")
    p.add_argument("--report", default="", help=f"report file (default OUT/{REPORT_NAME})")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    settings = Settings(short_side=a.short_side, max_fps=a.max_fps, keyint=a.keyint, crf=a.crf, preset=a.preset,
                        fast_decode=a.fast_decode, partial=a.partial)
    items = collect_inputs(a.inputs, a.root, allow_outside=a.allow_outside_root, opt_out="pass --allow-outside-root")
    if not items:
        return fail(f"no video files found in {' '.join(a.inputs)}")
    if a.timeout is not None and a.timeout < 0:
        return fail(f"--timeout must be >= 0 seconds (0: no limit), got {a.timeout:g}")
    res = prepare_videos(items, a.out, settings, workers=a.jobs, report=a.report, timeout=a.timeout)
    for r in res["videos"]:
        if r["status"] == "failed":
            print(f"FAILED {r['source']}: {r['reason']}", file=sys.stderr)
        elif r["reason"] and r["status"] == "done":
            print(f"WARNING {r['source']}: {r['reason']}", file=sys.stderr)
    print(f"{summary_line(res['totals'])}; report: {a.report or os.path.join(a.out, REPORT_NAME)}")
    return EXIT_OK if not res["totals"]["failed"] else EXIT_PARTIAL
