#!/usr/bin/env python
"""Multi-view testing of trained weights: the same as ``vidrec test`` (code in vidrec/cli/test_net.py; --help lists the options)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from vidrec.cli.test_net import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(prog="tools/test_net.py"))
