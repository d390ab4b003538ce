"""Multi-view testing (TEST.NUM_ENSEMBLE_VIEWS x TEST.NUM_SPATIAL_CROPS views, softmax averaged per video).

    vidrec test --cfg CONFIG TEST.CHECKPOINT_FILE model.safetensors [KEY VALUE ...]
    torchrun --nproc_per_node=8 tools/test_net.py --cfg CONFIG TEST.CHECKPOINT_FILE ...
    vidrec test --rescore OUTPUT_DIR/test_test/scores.npz

Without TEST.CHECKPOINT_FILE the weights of OUTPUT_DIR are used (model_final.safetensors,
else the newest checkpoint). Results go to OUTPUT_DIR/test_<TEST.SPLIT>/.
"""
import argparse
import json

from .common import add_cfg_arg, add_common_args, one_line_errors
from .train_net import EPILOG, report_unreadable


def unreadable_test_videos(metrics) -> list:
    from ..utils.text import plural

    n = int(metrics.get("num_failed", 0))
    return [(n, f"{n} of {plural(int(metrics.get('num_total', 0)), 'test video')}")]


def parse_args(argv=None, prog=None):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
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
        return report_unreadable(unreadable_test_videos(metrics), f"their ids are in {args.rescore}")
    from ..config import load_config
    from ..engine import evaluate_weights

    cfg = load_config(args.cfg_file, args.opts)
    result = evaluate_weights(cfg)
    return report_unreadable(unreadable_test_videos(result["metrics"]),
                             f"named in the log and in {cfg.OUTPUT_DIR}/test_{cfg.TEST.SPLIT}/metrics.json")
