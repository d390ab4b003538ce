#!/usr/bin/env python
"""Per-clip embeddings of videos: the same as ``vidrec extract`` (code in vidrec/cli/extract_features.py; --help lists the options)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from vidrec.cli.extract_features import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(prog="tools/extract_features.py"))
