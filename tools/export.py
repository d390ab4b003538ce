#!/usr/bin/env python
"""TorchScript / ONNX export with a parity check: the same as ``vidrec export`` (code in vidrec/cli/export.py; --help lists the options)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from vidrec.cli.export import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(prog="tools/export.py"))
