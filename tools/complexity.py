#!/usr/bin/env python
"""Params and GFLOPs of vidrec models: the same as ``vidrec complexity`` (code in vidrec/cli/complexity.py; --help lists the options)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from vidrec.cli.complexity import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(prog="tools/complexity.py"))
