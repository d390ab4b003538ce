"""Print params and GFLOPs (fvcore and the paper's convention) of vidrec models.

Examples:
  vidrec complexity --cfg kinetics_iresnet3d50.yaml
  vidrec complexity --models resnet3d_50 iresnet3d_50 --frames 16 --size 224
  vidrec complexity --models iresnet3d_50 --two-d --classes 1000   # the 2D networks
"""
import argparse

from .common import add_common_args, one_line_errors


def parse_args(argv=None, prog=None):
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("--cfg", help="config: a path, or the name of a shipped config ('vidrec configs' lists them)")
    p.add_argument("--models", nargs="+", help="registered model names (default: the config's MODEL.ARCH)")
    p.add_argument("--frames", type=int, help="clip length T (default: DATA.NUM_FRAMES, 1 with --two-d)")
    p.add_argument("--size", type=int, default=224, help="spatial size H=W (default 224)")
    p.add_argument("--classes", type=int, help="classifier outputs (default: MODEL.NUM_CLASSES)")
    p.add_argument("--two-d", action="store_true", help="2D mode: temporal kernels of 1, T=1")
    p.add_argument("--list", action="store_true", help="list registered models and exit")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    return p.parse_args(argv)


@one_line_errors
def main(argv=None, prog=None) -> int:
    args = parse_args(argv, prog)
    from ..config import load_config
    from ..models import list_models
    from ..models.complexity import complexity_rows, format_table

    if args.list:
        print("\n".join(list_models()))
        return 0
    cfg = load_config(args.cfg, args.opts)
    two_d = args.two_d or cfg.MODEL.TWO_D
    frames = args.frames or (1 if two_d else cfg.DATA.NUM_FRAMES)
    rows = complexity_rows(
        args.models or [cfg.MODEL.ARCH], (1, 3, frames, args.size, args.size),
        num_classes=args.classes or cfg.MODEL.NUM_CLASSES,
        width_mult=cfg.MODEL.WIDTH_MULT, temporal=not two_d,
    )
    print(format_table(rows))
    return 0

