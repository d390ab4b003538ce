"""The ``vidrec`` command: one entry point, a subcommand per tool.

    vidrec train --cfg kinetics_iresnet3d50 OUTPUT_DIR runs/k400_ir50
    vidrec predict --model runs/k400_ir50/model video.mp4

Each subcommand lives in its own module with a ``main(argv, prog)``; the
``tools/*.py`` scripts call the same functions.
"""
from __future__ import annotations

import importlib
import sys

from .common import DEBUG_FLAG, EXIT_CODES

# subcommand -> (module, one-line summary)
COMMANDS = {
    "train": ("train_net", "train a model, then run multi-view testing (--cfg NAME KEY VALUE ...)"),
    "test": ("test_net", "multi-view testing of trained weights, or re-score saved scores"),
    "predict": ("predict", "label actions over time in your own videos (top-k per clip, per video)"),
    "extract": ("extract_features", "per-clip embeddings of videos (.npy + JSON index; resumable, shardable)"),
    "export": ("export", "TorchScript or ONNX export with a parity check"),
    "complexity": ("complexity", "params and GFLOPs (fvcore and the paper's convention)"),
    "check-videos": ("check_videos", "probe videos (files, folders, lists) in parallel; report + quarantine list"),
    "prepare": ("prepare", "re-encode videos for fast training (short side 320, key frames; resumable, verified)"),
    "build-lists": ("build_lists", "official Kinetics / SSv2 annotations -> path,label lists"),
    "demo": ("demo", "the whole path with no dataset: synthetic videos, train, test, predict"),
    "configs": ("configs", "list the shipped configs and the registered models"),
}


def usage() -> str:
    from ..version import __version__

    width = max(len(c) for c in COMMANDS)
    lines = [f"usage: vidrec <command> [options]   (vidrec {__version__})", "",
             "Video action recognition with ResNet3D / iResNet3D and relatives.", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "'vidrec <command> --help' shows a command's options. Config overrides follow the",
              "PySlowFast convention: --cfg FILE_OR_NAME then KEY VALUE pairs. Errors are one 'error:'",
              "line; --debug (vidrec --debug <command> ..., or VIDREC_DEBUG=1) shows the traceback.", "",
              EXIT_CODES]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [DEBUG_FLAG] and len(argv) > 1:  # vidrec --debug <command> ...: the command's --debug
        argv = argv[1:] + [DEBUG_FLAG]
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from ..version import __version__

        print(f"vidrec {__version__}")
        return 0
    name = argv[0]
    if name not in COMMANDS:
        import difflib

        close = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f" Did you mean: {close[0]}?" if close else ""
        print(f"error: unknown command '{name}'.{hint} Commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f".{COMMANDS[name][0]}", __name__)
    return module.main(argv[1:], prog=f"vidrec {name}")
