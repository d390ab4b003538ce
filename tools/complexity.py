#!/usr/bin/env python
"""Print params and GFLOPs (fvcore and the paper's convention) of vidrec models.

Examples:
  python tools/complexity.py --cfg kinetics_iresnet3d50.yaml
  python tools/complexity.py --models resnet3d_50 iresnet3d_50 --frames 16 --size 224
  python tools/complexity.py --models iresnet3d_50 --two-d --classes 1000   # the 2D networks
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from vidrec.config import ConfigError, load_config  # noqa: E402
from vidrec.models import list_models  # noqa: E402
from vidrec.models.complexity import complexity_rows, format_table  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", help="config file (bare names resolve against configs/)")
    p.add_argument("--models", nargs="+", help="registered model names (default: the config's MODEL.ARCH)")
    p.add_argument("--frames", type=int, help="clip length T (default: DATA.NUM_FRAMES, 1 with --two-d)")
    p.add_argument("--size", type=int, default=224, help="spatial size H=W (default 224)")
    p.add_argument("--classes", type=int, help="classifier outputs (default: MODEL.NUM_CLASSES)")
    p.add_argument("--two-d", action="store_true", help="2D mode: temporal kernels of 1, T=1")
    p.add_argument("--list", action="store_true", help="list registered models and exit")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.list:
        print("\n".join(list_models()))
        return 0
    try:
        cfg = load_config(args.cfg, args.opts)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    two_d = args.two_d or cfg.MODEL.TWO_D
    frames = args.frames or (1 if two_d else cfg.DATA.NUM_FRAMES)
    try:
        rows = complexity_rows(
            args.models or [cfg.MODEL.ARCH], (1, 3, frames, args.size, args.size),
            num_classes=args.classes or cfg.MODEL.NUM_CLASSES,
            width_mult=cfg.MODEL.WIDTH_MULT, temporal=not two_d,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
