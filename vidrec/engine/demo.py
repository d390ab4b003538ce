"""The embedded default: the whole path on a fresh machine with no dataset.

1. write the synthetic motion dataset (classes differ only by motion);
2. train a small iResNet3D on CPU (configs/demo_synthetic.yaml, ~5 minutes on 2 cores);
3. 30-view testing on the synthetic test split (target: >= 90% video top-1);
4. predict on a real sample video (top-k classes per clip; the classes are the
   synthetic ones, so this shows the path, not a meaningful label).
"""
from __future__ import annotations

import argparse
import logging
import os
import time
from typing import Dict, List, Optional

import torch

logger = logging.getLogger("vidrec")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_VIDEO = os.path.join(os.path.dirname(REPO), "shared", "videos", "demo.mp4")
TARGET_TOP1 = 90.0


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="tools/demo.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Overrides are KEY VALUE pairs of vidrec/config/defaults.py keys, e.g. SOLVER.MAX_EPOCH 5.")
    p.add_argument("--cfg", dest="cfg_file", default="demo_synthetic.yaml", help="config (default: %(default)s)")
    p.add_argument("--data-dir", default=None, help="where the synthetic videos go (default: OUTPUT_DIR/data)")
    p.add_argument("--per-class", type=int, nargs=3, default=(100, 6, 8), metavar=("TRAIN", "VAL", "TEST"),
                   help="synthetic videos per class and split (default: %(default)s)")
    p.add_argument("--size", type=int, default=48, help="synthetic frame size in pixels (default: %(default)s)")
    p.add_argument("--frames", type=int, default=32, help="frames per synthetic video (default: %(default)s)")
    p.add_argument("--video", default=DEFAULT_VIDEO, help="real video to run prediction on (default: %(default)s)")
    p.add_argument("--clips", type=int, default=3, help="clips of --video to predict (default: %(default)s)")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE", help="config overrides")
    return p.parse_args(argv)


def predict_video(cfg, model: torch.nn.Module, path: str, clips: int, top_k: int,
                  class_names: Optional[List[str]]) -> Dict:
    """Top-k classes for ``clips`` centre-crop clips spread over ``path``, and for their average."""
    from ..data import build_dataset
    from ..data.lists import write_path_label_list

    path = os.path.abspath(path)
    pcfg = cfg.clone()
    pcfg.defrost()
    list_file = os.path.join(cfg.OUTPUT_DIR, "predict_list.csv")
    write_path_label_list(list_file, [os.path.basename(path)], [0])
    pcfg.DATA.PATH_TO_DATA_DIR = os.path.dirname(path)
    pcfg.DATA.TEST_LIST = list_file
    pcfg.TEST.NUM_ENSEMBLE_VIEWS, pcfg.TEST.NUM_SPATIAL_CROPS = clips, 1
    item = build_dataset(pcfg, "test")[0]
    if item["error"]:
        raise RuntimeError(f"cannot read {path}: {item['error']}")
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(model(item["views"]).float(), dim=1)
    names = class_names or [str(i) for i in range(probs.shape[1])]
    k = min(top_k, probs.shape[1])

    def top(p):
        v, i = p.topk(k)
        return [(names[j], float(x)) for x, j in zip(v.tolist(), i.tolist())]

    return {"path": path, "clips": [top(p) for p in probs], "video": top(probs.mean(0))}


def run_demo(argv=None) -> Dict:
    args = parse_args(argv)
    from ..config import load_config
    from ..data import make_synthetic_dataset
    from ..models import build_model
    from .checkpoint import load_weights
    from .trainer import train

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

    pred = None
    if args.video and os.path.isfile(args.video):
        model = build_model(cfg)
        weights = os.path.join(cfg.OUTPUT_DIR, "model_final.safetensors")
        best = os.path.join(cfg.OUTPUT_DIR, "checkpoints", "best.pt")
        if cfg.TEST.WEIGHTS == "best" and os.path.isfile(best):
            weights = best  # the weights the test used
        load_weights(model, weights, strict=True)
        with open(ds["classes"]) as f:
            names = [ln.strip() for ln in f if ln.strip()]
        try:
            pred = predict_video(cfg, model, args.video, args.clips, args.top_k, names)
        except Exception as e:  # noqa: BLE001 - the demo's main result is already in
            print(f"[demo] prediction on {args.video} failed: {e}")

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
            print(f"[demo]   clip {i + 1}: " + ", ".join(f"{n} {p:.2f}" for n, p in clip))
        print("[demo]   average: " + ", ".join(f"{n} {p:.2f}" for n, p in pred["video"]))
    elif args.video:
        print(f"[demo] no prediction: {args.video} not found")
    print(f"[demo] outputs in {cfg.OUTPUT_DIR} (metrics.jsonl, training_curves.png, test_test/, checkpoints/)")
    print("=" * 72)
    return {"test": m, "prediction": pred, "seconds": {"data": t_data, "train_test": t_train}}
