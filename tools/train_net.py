#!/usr/bin/env python
"""Train a video model, then run multi-view testing.

    python tools/train_net.py --cfg configs/tiny_cpu.yaml SOLVER.MAX_EPOCH 5 OUTPUT_DIR out/x
    torchrun --nproc_per_node=8 tools/train_net.py --cfg CONFIG [KEY VALUE ...]

Re-running with the same OUTPUT_DIR resumes from its newest checkpoint
(TRAIN.AUTO_RESUME). All logic lives in vidrec.engine.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Overrides are KEY VALUE pairs of vidrec/config/defaults.py keys, e.g. TRAIN.BATCH_SIZE 32.")
    parser.add_argument("--cfg", dest="cfg_file", default=None,
                        help="YAML config: a path, or a bare name under configs/ (e.g. tiny_cpu.yaml)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE",
                        help="config overrides applied after the file")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from vidrec.config import ConfigError, load_config
    from vidrec.engine import train

    try:
        cfg = load_config(args.cfg_file, args.opts)
    except ConfigError as e:  # a one-line message, not a traceback
        sys.exit(f"error: {e}")
    train(cfg)


if __name__ == "__main__":
    main()
