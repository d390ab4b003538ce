#!/usr/bin/env python
"""Re-encode a list or folder of videos for fast training: the same as ``vidrec prepare`` (code in vidrec/cli/prepare.py; --help lists the options)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from vidrec.cli.prepare import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(prog="tools/prepare_videos.py"))
