#!/usr/bin/env python
"""Official Kinetics / SSv2 annotations -> path,label lists: the same as ``vidrec build-lists`` (code in vidrec/cli/build_lists.py; --help lists the options)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from vidrec.cli.build_lists import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(prog="tools/build_lists.py"))
