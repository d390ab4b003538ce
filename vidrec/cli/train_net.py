"""Train a video model, then run multi-view testing.

    vidrec train --cfg tiny_cpu SOLVER.MAX_EPOCH 5 OUTPUT_DIR out/x
    torchrun --nproc_per_node=8 tools/train_net.py --cfg kinetics_iresnet3d50.yaml [KEY VALUE ...]

Re-running with the same OUTPUT_DIR resumes from its newest checkpoint
(TRAIN.AUTO_RESUME). At the end OUTPUT_DIR/model/ holds the trained model as
one self-describing folder (model.safetensors + config.json) for
'vidrec predict --model' and 'vidrec extract --model'.
"""
import argparse
import os

from .common import EXIT_OK, EXIT_PARTIAL, add_cfg_arg, add_common_args, one_line_errors

EPILOG = "Overrides are KEY VALUE pairs of config keys (vidrec/config/defaults.py), e.g. TRAIN.BATCH_SIZE 32."


def report_unreadable(parts, where: str) -> int:
    """``parts``: [(count, "N thing(s)")]. Prints what could not be read (main rank only) and returns
    the exit status: 1 when some video could not be read, else 0."""
    said = [what for n, what in parts if n]
    if said and int(os.environ.get("RANK", "0")) == 0:
        print(f"finished, but some videos could not be read: {', '.join(said)} ({where})")
    return EXIT_PARTIAL if said else EXIT_OK


def train_failures(result) -> list:
    """(count, text) of the videos a finished training could not read: training loads (skipped,
    another sample used instead), the last validation, the test."""
    from ..utils.text import plural

    loads = sum(int(r.get("failed_videos", 0)) for r in result.get("history", []) if r.get("type") == "train_epoch")
    parts = [(loads, f"{plural(loads, 'training load')} (skipped)")]
    for key, what in (("val", "validation video"), ("test", "test video")):
        m = result.get(key) or {}
        n = int(m.get("num_failed", 0))
        parts.append((n, f"{n} of {plural(int(m.get('num_total', 0)), what)}"))
    return parts


def parse_args(argv=None, prog=None):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    add_cfg_arg(parser)
    parser.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE",
                        help="config overrides applied after the file")
    return parser.parse_args(argv)


@one_line_errors
def main(argv=None, prog=None) -> int:
    args = parse_args(argv, prog)
    from ..config import load_config
    from ..engine import train

    cfg = load_config(args.cfg_file, args.opts)
    parts = train_failures(train(cfg))
    where = "named in the log" + (f"; the test's also in {cfg.OUTPUT_DIR}/test_{cfg.TEST.SPLIT}/metrics.json"
                                  if parts[-1][0] else "")
    return report_unreadable(parts, where)
