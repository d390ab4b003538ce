#!/usr/bin/env python
"""The whole path with no dataset: synthetic videos, train, test, predict: the same as ``vidrec demo`` (code in vidrec/cli/demo.py; --help lists the options)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from vidrec.cli.demo import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(prog="tools/demo.py"))
