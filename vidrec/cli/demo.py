"""The embedded default: the whole path on a fresh machine with no dataset.

1. write the synthetic motion dataset (classes differ only by motion);
2. train a small iResNet3D on CPU (configs/demo_synthetic.yaml, ~4.5 minutes on 2 cores);
3. 30-view testing on the synthetic test split (target: >= 90% video top-1);
4. predict on a real sample video with :class:`vidrec.Predictor` (top-k classes per
   clip and for the video; the classes are the synthetic ones, so this shows the
   path, not a meaningful label).
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import time
from typing import Dict

from .common import add_common_args, one_line_errors

logger = logging.getLogger("vidrec")

TARGET_TOP1 = 90.0
SAMPLES_ENV = "VIDREC_SAMPLE_VIDEOS"


def default_video() -> str:
    """A real sample video when one is at hand: $VIDREC_SAMPLE_VIDEOS/demo.mp4, else
    ../shared/videos/demo.mp4 beside a source checkout; "" otherwise."""
    checkout = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    folder = os.environ.get(SAMPLES_ENV) or os.path.join(os.path.dirname(checkout), "shared", "videos")
    path = os.path.join(folder, "demo.mp4")
    return path if os.path.isfile(path) else ""


def parse_args(argv=None, prog=None):
    p = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Overrides are KEY VALUE pairs of vidrec/config/defaults.py keys, e.g. SOLVER.MAX_EPOCH 5.")
    add_common_args(p)
    p.add_argument("--cfg", dest="cfg_file", default="demo_synthetic.yaml", help="config (default: %(default)s)")
    p.add_argument("--data-dir", default=None, help="where the synthetic videos go (default: OUTPUT_DIR/data)")
    p.add_argument("--per-class", type=int, nargs=3, default=(150, 10, 20), metavar=("TRAIN", "VAL", "TEST"),
                   help="synthetic videos per class and split (default: %(default)s)")
    p.add_argument("--size", type=int, default=48, help="synthetic frame size in pixels (default: %(default)s)")
    p.add_argument("--frames", type=int, default=32, help="frames per synthetic video (default: %(default)s)")
    p.add_argument("--video", default=None,
                   help=f"real video to run prediction on (default: ${SAMPLES_ENV}/demo.mp4 or "
                        "../shared/videos/demo.mp4 beside a checkout, else a synthetic test video)")
    p.add_argument("--clips", type=int, default=3, help="clips of --video to predict (default: %(default)s)")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE", help="config overrides")
    return p.parse_args(argv)


def _frame_count(path: str) -> int:
    """Frames in the video's index (0 when it cannot be read; the Predictor reports real errors)."""
    from ..data.decoders import VideoError, index_video

    try:
        return index_video(path).num_frames
    except VideoError:
        return 0


def predict_video(cfg, weights: str, path: str, clips: int, top_k: int) -> Dict:
    """Label ``path`` with :class:`vidrec.Predictor` (the project's one inference path).

    ``clips`` centre-crop windows are spread evenly over the video (the hop is
    chosen from the container's frame count; the last window is aligned to the
    end); the video-level top-k averages the windows' softmax.
    """
    from ..data.sampling import clip_span
    from ..inference.predictor import Predictor

    predictor = Predictor(cfg, weights, device=cfg.DEVICE)  # cfg is frozen; the Predictor copies it
    span = clip_span(cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE)
    n, hop = _frame_count(path), None
    if clips <= 1:
        hop = max(n, span)  # one window, from the start
    elif n > span:
        hop = max(1, math.ceil((n - span) / (clips - 1)))
    res = predictor.predict(path, hop=hop, topk=top_k, cover_end=clips > 1)
    res["clips"] = res["clips"][:max(1, clips)]
    return {"path": res["path"], "duration": res["duration"], "num_windows": res["num_clips"],
            "clips": [{"start": c["start"], "end": c["end"], "topk": [(t["label"], t["prob"]) for t in c["topk"]]}
                      for c in res["clips"]],
            "video": [(t["label"], t["prob"]) for t in res["video"]["topk"]]}


@one_line_errors
def main(argv=None, prog=None) -> int:
    run_demo(argv, prog)
    return 0


def run_demo(argv=None, prog=None) -> Dict:
    args = parse_args(argv, prog)
    from ..config import load_config
    from ..data import make_synthetic_dataset
    from ..engine import train

    cfg = load_config(args.cfg_file, args.opts)
    data_dir = args.data_dir or os.path.join(cfg.OUTPUT_DIR, "data")
    t0 = time.time()
    print(f"[demo] writing the synthetic motion dataset to {data_dir} ...", flush=True)
    ds = make_synthetic_dataset(data_dir, num_classes=cfg.MODEL.NUM_CLASSES, videos_per_class=tuple(args.per_class),
                                size=(args.size, args.size), num_frames=args.frames, seed=cfg.RNG_SEED)
    t_data = time.time() - t0
    cfg.defrost()
    cfg.DATA.DATASET = "list"
    cfg.DATA.PATH_TO_DATA_DIR = ds["root"]
    cfg.DATA.TRAIN_LIST, cfg.DATA.VAL_LIST, cfg.DATA.TEST_LIST = ds["train"], ds["val"], ds["test"]
    cfg.MODEL.CLASS_NAMES = ds["classes"]
    cfg.freeze()

    print(f"[demo] training {cfg.MODEL.ARCH} (width x{cfg.MODEL.WIDTH_MULT}) for {cfg.SOLVER.MAX_EPOCH} epochs "
          f"on {cfg.DEVICE} ...", flush=True)
    t1 = time.time()
    result = train(cfg)
    t_train = time.time() - t1
    m = result["test"]

    video = args.video if args.video is not None else default_video()
    if not video and m is not None:  # no real video at hand: a held-out synthetic one shows the same path
        from ..data.lists import read_path_label_list

        first = read_path_label_list(ds["test"])[0][0]
        video = os.path.join(ds["root"], first)
    pred, video_found = None, bool(video) and os.path.isfile(video)
    if video_found:
        weights = os.path.join(cfg.OUTPUT_DIR, "model_final.safetensors")
        best = os.path.join(cfg.OUTPUT_DIR, "checkpoints", "best.pt")
        if cfg.TEST.WEIGHTS == "best" and os.path.isfile(best):
            weights = best  # the weights the test used
        try:
            pred = predict_video(cfg, weights, os.path.abspath(video), args.clips, args.top_k)
        except Exception as e:  # noqa: BLE001 - the demo's main result is already in
            print(f"[demo] prediction on {video} failed: {e}")

    print("\n" + "=" * 72)
    print(f"[demo] data {t_data:.0f}s, training + testing {t_train:.0f}s, total {time.time() - t0:.0f}s")
    if m is not None:
        views = cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS
        print(f"[demo] {views}-view test on the synthetic test split: evaluated {m['num_videos']} of "
              f"{m['num_total']} videos")
        print(f"[demo]   video top-1 {m['top1']:.1f}%  top-5 {m['top5']:.1f}%  mean class acc "
              f"{m['mean_class_acc']:.1f}%  clip top-1 {m.get('clip_top1', float('nan')):.1f}%")
        verdict = "reached" if m["top1"] >= TARGET_TOP1 else "NOT reached"
        print(f"[demo]   target >= {TARGET_TOP1:.0f}% video top-1: {verdict}")
    if pred is not None:
        print(f"[demo] prediction on {pred['path']} (synthetic-motion classes; shows the path only):")
        for i, clip in enumerate(pred["clips"]):
            print(f"[demo]   clip {i + 1} ({clip['start']:.1f}-{clip['end']:.1f} s): "
                  + ", ".join(f"{n} {p:.2f}" for n, p in clip["topk"]))
        print(f"[demo]   video ({pred['num_windows']} clips, mean softmax): "
              + ", ".join(f"{n} {p:.2f}" for n, p in pred["video"]))
    elif video and not video_found:
        print(f"[demo] no prediction: {video} not found")
    print(f"[demo] outputs in {cfg.OUTPUT_DIR} (metrics.jsonl, training_curves.png, test_test/, checkpoints/)")
    print("=" * 72)
    return {"test": m, "prediction": pred, "seconds": {"data": t_data, "train_test": t_train}}
