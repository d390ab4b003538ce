#!/usr/bin/env python
"""Probe every video of a list or folder: the same as ``vidrec check-videos`` (code in vidrec/cli/check_videos.py; --help lists the options)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from vidrec.cli.check_videos import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(prog="tools/check_videos.py"))
