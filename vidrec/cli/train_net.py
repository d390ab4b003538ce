"""Train a video model, then run multi-view testing.

    vidrec train --cfg tiny_cpu SOLVER.MAX_EPOCH 5 OUTPUT_DIR out/x
    torchrun --nproc_per_node=8 tools/train_net.py --cfg kinetics_iresnet3d50.yaml [KEY VALUE ...]

Re-running with the same OUTPUT_DIR resumes from its newest checkpoint
(TRAIN.AUTO_RESUME). At the end OUTPUT_DIR/model/ holds the trained model as
one self-describing folder (model.safetensors + config.json) for
'vidrec predict --model' and 'vidrec extract --model'.
"""
import argparse

from .common import add_cfg_arg, one_line_errors

EPILOG = ("Overrides are KEY VALUE pairs of config keys (vidrec/config/defaults.py), e.g. TRAIN.BATCH_SIZE 32. "
          "Set VIDREC_DEBUG=1 to see tracebacks of errors.")


def parse_args(argv=None, prog=None):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_cfg_arg(parser)
    parser.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE",
                        help="config overrides applied after the file")
    return parser.parse_args(argv)


@one_line_errors
def main(argv=None, prog=None) -> int:
    args = parse_args(argv, prog)
    from ..config import load_config
    from ..engine import train

    train(load_config(args.cfg_file, args.opts))
    return 0
