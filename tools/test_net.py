#!/usr/bin/env python
"""Multi-view testing (TEST.NUM_ENSEMBLE_VIEWS x TEST.NUM_SPATIAL_CROPS views, softmax averaged per video).

    python tools/test_net.py --cfg CONFIG TEST.CHECKPOINT_FILE model.safetensors [KEY VALUE ...]
    torchrun --nproc_per_node=8 tools/test_net.py --cfg CONFIG TEST.CHECKPOINT_FILE ...
    python tools/test_net.py --rescore OUTPUT_DIR/test_test/scores.npz

Without TEST.CHECKPOINT_FILE the weights of OUTPUT_DIR are used (model_final.safetensors,
else the newest checkpoint). Results go to OUTPUT_DIR/test_<TEST.SPLIT>/.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Overrides are KEY VALUE pairs of vidrec/config/defaults.py keys, e.g. TEST.SPLIT val.")
    parser.add_argument("--cfg", dest="cfg_file", default=None,
                        help="YAML config: a path, or a bare name under configs/")
    parser.add_argument("--rescore", metavar="NPZ", default=None,
                        help="recompute metrics from a saved scores.npz (no model, no videos)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE",
                        help="config overrides applied after the file")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.rescore:
        from vidrec.engine.metrics import format_metrics, rescore_npz

        metrics = rescore_npz(args.rescore)
        print(format_metrics(metrics))
        print(json.dumps(metrics, indent=2))
        return
    from vidrec.config import ConfigError, load_config
    from vidrec.engine import test

    try:
        cfg = load_config(args.cfg_file, args.opts)
    except ConfigError as e:  # a one-line message, not a traceback
        sys.exit(f"error: {e}")
    test(cfg)


if __name__ == "__main__":
    main()
