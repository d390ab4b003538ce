#!/usr/bin/env python
"""Train a video model, then run multi-view testing: the same as ``vidrec train`` (code in vidrec/cli/train_net.py; --help lists the options)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from vidrec.cli.train_net import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(prog="tools/train_net.py"))
