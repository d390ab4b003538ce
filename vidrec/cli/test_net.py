"""Multi-view testing (TEST.NUM_ENSEMBLE_VIEWS x TEST.NUM_SPATIAL_CROPS views, softmax averaged per video).

    vidrec test --cfg CONFIG TEST.CHECKPOINT_FILE model.safetensors [KEY VALUE ...]
    torchrun --nproc_per_node=8 tools/test_net.py --cfg CONFIG TEST.CHECKPOINT_FILE ...
    vidrec test --rescore OUTPUT_DIR/test_test/scores.npz

Without TEST.CHECKPOINT_FILE the weights of OUTPUT_DIR are used (model_final.safetensors,
else the newest checkpoint). Results go to OUTPUT_DIR/test_<TEST.SPLIT>/.
"""
import argparse
import json

from .common import add_cfg_arg, one_line_errors
from .train_net import EPILOG


def parse_args(argv=None, prog=None):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_cfg_arg(parser)
    parser.add_argument("--rescore", metavar="NPZ", default=None,
                        help="recompute metrics from a saved scores.npz (no model, no videos)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE",
                        help="config overrides applied after the file")
    return parser.parse_args(argv)


@one_line_errors
def main(argv=None, prog=None) -> int:
    args = parse_args(argv, prog)
    if args.rescore:
        from ..engine.metrics import format_metrics, rescore_npz

        metrics = rescore_npz(args.rescore)
        print(format_metrics(metrics))
        print(json.dumps(metrics, indent=2))
        return 0
    from ..config import load_config
    from ..engine import test

    test(load_config(args.cfg_file, args.opts))
    return 0
