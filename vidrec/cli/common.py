"""Plumbing shared by the ``vidrec`` subcommands: the video tools' parser, model loading,
and turning expected failures into one ``error:`` line instead of a traceback."""
from __future__ import annotations

import argparse
import functools
import logging
import os
import re
import sys
from typing import List, Sequence, Tuple

_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z][A-Z0-9_]*)*$")
DEBUG_ENV = "VIDREC_DEBUG"


def is_config_key(token: str) -> bool:
    """A ``KEY`` of a ``KEY VALUE`` override (upper-case, dotted, a known top-level key)."""
    if not _KEY.match(token):
        return False
    from ..config.defaults import get_cfg

    return token.split(".")[0] in get_cfg()


def split_inputs_opts(tokens: Sequence[str]) -> Tuple[List[str], List[str]]:
    """Positional tokens -> (inputs, overrides): overrides start at the first config key."""
    tokens = list(tokens)
    for i, t in enumerate(tokens):
        if is_config_key(t) and not os.path.exists(t):
            return tokens[:i], tokens[i:]
    return tokens, []


def add_cfg_arg(p: argparse.ArgumentParser, required: bool = False, default=None, help_extra: str = "") -> None:
    p.add_argument("--cfg", dest="cfg_file", required=required, default=default,
                   help="YAML config: a path, or the name of a shipped config (e.g. kinetics_iresnet3d50; "
                        "'vidrec configs' lists them)" + help_extra)


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model (either --model DIR, or --cfg with --weights)")
    g.add_argument("--model", dest="model_dir", default=None, metavar="DIR",
                   help="a model folder written by training or save_pretrained (model.safetensors + config.json)")
    g.add_argument("--cfg", dest="cfg_file", default=None,
                   help="YAML config of the trained model: a path, or the name of a shipped config")
    g.add_argument("--weights", default=None,
                   help="trained weights: a checkpoint (.pt) or model_final.safetensors")
    g.add_argument("--device", default=None, help="auto (GPU if present), cpu, cuda, cuda:N (default: DEVICE)")
    g.add_argument("--batch-size", type=int, default=8, help="clips per forward pass (default 8)")


def check_model_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """--model DIR stands alone; otherwise --cfg and --weights are both needed."""
    if args.model_dir:
        if args.cfg_file or args.weights:
            p.error("--model DIR already holds the config and the weights; drop --cfg / --weights")
    elif not (args.cfg_file and args.weights):
        p.error("give --model DIR, or both --cfg CONFIG and --weights FILE")


def video_parser(doc: str, prog: str = None) -> argparse.ArgumentParser:
    """The parser every video tool starts from: inputs (then KEY VALUE overrides) and the model."""
    p = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="*", metavar="VIDEO_OR_FOLDER_OR_LIST [KEY VALUE ...]",
                   help="videos, folders, lists; then optional config overrides")
    add_model_args(p)
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the network (frozen weights): faster on long runs, tens of seconds to "
                        "compile first; per-stage maps stay eager")
    return p


def parse_video_args(p: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parse, then split the positional tokens into videos and trailing KEY VALUE overrides."""
    args = p.parse_intermixed_args(argv)
    args.inputs, args.opts = split_inputs_opts(args.inputs)
    check_model_args(p, args)
    if not args.inputs:
        p.error("no videos given")
    return args


def build_predictor(args, opts: Sequence[str], device=None, **kwargs):
    from ..inference.predictor import Predictor

    kwargs.setdefault("compile", getattr(args, "compile", False))
    common = dict(device=device or args.device, batch_size=args.batch_size, opts=opts, **kwargs)
    if getattr(args, "model_dir", None):
        return Predictor.from_pretrained(args.model_dir, **common)
    return Predictor(args.cfg_file, args.weights, **common)


def setup_logging(quiet: bool = False) -> None:
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s", stream=sys.stderr)


def fail(msg: str, code: int = 2) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return code


SETUP_ERRORS = (ValueError, FileNotFoundError, RuntimeError, OSError)


def one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text


def expected_errors() -> tuple:
    """Failures a user can fix (bad config, list, video, weights, disk): one line, no traceback."""
    from ..config import ConfigError
    from ..data.decoders import VideoError
    from ..data.lists import ListError
    from ..models.weights import CheckpointError

    return (ConfigError, ListError, VideoError, CheckpointError, FloatingPointError, OSError, ValueError)


def one_line_errors(main):
    """Wrap a subcommand's ``main``: expected failures print ``error: ...`` and return 2.

    Set ``VIDREC_DEBUG=1`` to see the traceback instead.
    """
    @functools.wraps(main)
    def run(argv=None, prog=None) -> int:
        try:
            return main(argv, prog) or 0
        except BrokenPipeError:  # output piped into e.g. head, which has closed
            sys.stdout = open(os.devnull, "w")
            return 0
        except expected_errors() as e:
            if os.environ.get(DEBUG_ENV):
                raise
            return fail(one_line(e))
    return run
