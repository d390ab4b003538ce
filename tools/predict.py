#!/usr/bin/env python
"""Label actions over time in your own videos: the same as ``vidrec predict`` (code in vidrec/cli/predict.py; --help lists the options)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from vidrec.cli.predict import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(prog="tools/predict.py"))
