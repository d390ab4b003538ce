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
DEBUG_FLAG = "--debug"

# Exit status, the same rule for every subcommand (README: "Exit codes").
EXIT_OK, EXIT_PARTIAL, EXIT_ERROR = 0, 1, 2
EXIT_CODES = """exit status (every vidrec command):
  0  everything done
  1  finished, but some inputs failed: videos that could not be read (or are missing) are
     counted in the summary and listed by name; for export, the parity check failed
  2  could not run: bad arguments or config, missing list or weights, refused checkpoint,
     disk full, too many unreadable videos (DATA.MAX_FAIL_RATE), ... One 'error:' line;
     --debug (or VIDREC_DEBUG=1) shows the Python traceback instead."""


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
    add_common_args(p)
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


def fail(msg: str, code: int = EXIT_ERROR) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return code


def add_common_args(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """What every subcommand has: ``--debug``, and the exit-status rule at the end of ``--help``."""
    p.add_argument(DEBUG_FLAG, action="store_true",
                   help=f"show the Python traceback of an error instead of one line (also: {DEBUG_ENV}=1)")
    p.epilog = f"{p.epilog}\n\n{EXIT_CODES}" if p.epilog else EXIT_CODES
    if p.formatter_class is argparse.HelpFormatter:  # keep the table's line breaks
        p.formatter_class = argparse.RawDescriptionHelpFormatter
    return p


_debug = False  # --debug of the command being run (set by one_line_errors)


def debug_enabled() -> bool:
    """--debug given, or VIDREC_DEBUG set (not to 0): show tracebacks instead of one line."""
    return _debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def setup_failed(e: BaseException) -> int:
    """In an ``except`` block: one ``error:`` line and exit status 2, or (debug) re-raise ``e``."""
    if debug_enabled():
        raise e
    return fail(one_line(e))


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

    ``--debug`` anywhere in the arguments (taken out before parsing, so it also works after
    ``KEY VALUE`` overrides) or ``VIDREC_DEBUG=1`` re-raises instead: the traceback. Anything
    else (a bug) prints its traceback, then the ``error:`` line, and also returns 2.
    """
    @functools.wraps(main)
    def run(argv=None, prog=None) -> int:
        global _debug
        argv = list(sys.argv[1:] if argv is None else argv)
        before, flag = _debug, DEBUG_FLAG in argv
        if flag:
            argv = [a for a in argv if a != DEBUG_FLAG]
        _debug = before or flag
        debug = debug_enabled()
        try:
            return main(argv, prog) or EXIT_OK
        except BrokenPipeError:  # output piped into e.g. head, which has closed
            sys.stdout = open(os.devnull, "w")
            return EXIT_OK
        except expected_errors() as e:
            if debug:
                raise
            return fail(one_line(e))
        except Exception as e:  # noqa: BLE001 - a bug: keep the traceback, keep the exit-status rule
            if debug:
                raise
            import traceback

            traceback.print_exc()
            return fail(f"unexpected {type(e).__name__} (the traceback above): {one_line(e)}")
        finally:
            _debug = before
    return run
