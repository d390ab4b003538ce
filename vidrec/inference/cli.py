"""Shared command-line plumbing of tools/predict.py, extract_features.py and export.py."""
from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from typing import List, Sequence, Tuple

_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z][A-Z0-9_]*)*$")


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


def add_model_args(p: argparse.ArgumentParser, weights_required: bool = True) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--cfg", dest="cfg_file", required=True,
                   help="YAML config of the trained model: a path, or a bare name under configs/")
    g.add_argument("--weights", required=weights_required, default=None,
                   help="trained weights: a checkpoint (.pt) or model_final.safetensors")
    g.add_argument("--device", default=None, help="auto (GPU if present), cpu, cuda, cuda:N (default: DEVICE)")
    g.add_argument("--batch-size", type=int, default=8, help="clips per forward pass (default 8)")


def video_parser(doc: str) -> argparse.ArgumentParser:
    """The parser every video tool starts from: inputs (then KEY VALUE overrides) and the model."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    if not args.inputs:
        p.error("no videos given")
    return args


def build_predictor(args, opts: Sequence[str], device=None, **kwargs):
    from .predictor import Predictor

    kwargs.setdefault("compile", getattr(args, "compile", False))
    return Predictor(args.cfg_file, args.weights, device=device or args.device, batch_size=args.batch_size,
                     opts=opts, **kwargs)


def setup_logging(quiet: bool = False) -> None:
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s", stream=sys.stderr)


def fail(msg: str, code: int = 2) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return code


SETUP_ERRORS = (ValueError, FileNotFoundError, RuntimeError, OSError)
