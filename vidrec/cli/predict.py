"""Label actions over time in your own videos with a trained vidrec model.

Slides a clip window (DATA.NUM_FRAMES x DATA.SAMPLING_RATE frames) over each
video, batches the clips through the model and reports every clip's start/end
time and top-k labels plus a video-level prediction. Videos are decoded in one
streaming pass (at most one window of frames in memory), so hours-long videos
are fine.

Examples:
  vidrec predict --model runs/k400_ir50/model video.mp4
  vidrec predict --cfg kinetics_iresnet3d50.yaml --weights model_final.safetensors video.mp4
  vidrec predict --cfg my.yaml --weights ckpt.pt videos/ --hop-seconds 1 -o preds.json --csv preds.csv
  vidrec predict --cfg my.yaml --weights ckpt.pt list.txt --multiview --annotate annotated/ \\
      MODEL.CLASS_NAMES classes.txt TEST.NUM_ENSEMBLE_VIEWS 10

Inputs are video files, folders (searched recursively) or .txt/.csv lists (one
video per line). Trailing KEY VALUE pairs override config keys. An unreadable
video prints one line naming it and the reason; the others still run and the
exit status is 1. Setup errors (config, weights that do not fit) exit with 2.
"""
import os
import sys

from .common import (EXIT_OK, EXIT_PARTIAL, SETUP_ERRORS, build_predictor, fail, one_line_errors, parse_video_args,
                     setup_failed, setup_logging, video_parser)


def parse_args(argv=None, prog=None):
    p = video_parser(__doc__, prog)
    w = p.add_argument_group("windows")
    hop = w.add_mutually_exclusive_group()
    hop.add_argument("--hop", type=int, default=None, help="frames between clip starts (default: one clip span)")
    hop.add_argument("--hop-seconds", type=float, default=None, help="seconds between clip starts")
    w.add_argument("--no-cover-end", action="store_true",
                   help="do not add a last clip aligned to the end of the video")
    w.add_argument("--topk", type=int, default=5, help="labels reported per clip and per video (default 5)")
    w.add_argument("--multiview", action="store_true",
                   help="video-level prediction with the test protocol (TEST.NUM_ENSEMBLE_VIEWS x "
                        "TEST.NUM_SPATIAL_CROPS views, 10x3 = 30 by default) instead of the mean over clips")
    o = p.add_argument_group("output")
    o.add_argument("-o", "--output", default="predictions.json", help="JSON file (default predictions.json)")
    o.add_argument("--csv", default=None, help="also write a CSV (one row per clip/video and rank)")
    o.add_argument("--annotate", default=None, metavar="DIR",
                   help="write a copy of each video with the current label drawn on it into DIR")
    o.add_argument("--print-clips", type=int, default=20, help="clips printed per video (default 20; 0: none)")
    o.add_argument("-q", "--quiet", action="store_true", help="print only failures and the summary")
    return parse_video_args(p, argv)


@one_line_errors
def main(argv=None, prog=None) -> int:
    args = parse_args(argv, prog)
    setup_logging(args.quiet)
    from ..data import VideoError
    from ..inference.inputs import expand_inputs
    from ..inference.outputs import format_video, make_document, write_csv, write_json
    from ..utils.text import plural

    try:
        predictor = build_predictor(args, args.opts)
    except SETUP_ERRORS as e:
        return setup_failed(e)
    paths = expand_inputs(args.inputs)
    if not paths:
        return fail(f"no video files found in {' '.join(args.inputs)}")
    settings = {"hop_frames": args.hop, "hop_seconds": args.hop_seconds, "topk": args.topk,
                "multiview": args.multiview, "cover_end": not args.no_cover_end}
    videos = []
    for res in predictor.predict_many(paths, hop=args.hop, hop_seconds=args.hop_seconds, topk=args.topk,
                                      multiview=args.multiview, cover_end=not args.no_cover_end):
        if not res["ok"]:
            print(f"FAILED {res['path']}: {res['error']}", file=sys.stderr)
        else:
            if res.get("warning"):
                print(f"WARNING {res['path']}: {res['warning']}", file=sys.stderr)
            if not args.quiet:
                print(format_video(res, args.print_clips) if args.print_clips else format_video(res, 0).split("\n  [")[0])
            if args.annotate:
                from ..inference.annotate import annotate_video

                base = os.path.splitext(os.path.basename(res["path"]))[0]
                out = os.path.join(args.annotate, f"{base}.annotated.mp4")
                os.makedirs(args.annotate, exist_ok=True)
                try:
                    res["annotated"] = annotate_video(res, out)
                except (VideoError, OSError, ValueError) as e:
                    print(f"FAILED annotating {res['path']}: {e}", file=sys.stderr)
        videos.append(res)
    doc = make_document(predictor.describe(), settings, videos)
    write_json(args.output, doc)
    if args.csv:
        write_csv(args.csv, videos)
    s = doc["summary"]
    print(f"{plural(s['videos'], 'video')}: {s['ok']} ok, {s['failed']} failed; wrote {args.output}"
          + (f" and {args.csv}" if args.csv else ""))
    return EXIT_PARTIAL if s["failed"] else EXIT_OK

