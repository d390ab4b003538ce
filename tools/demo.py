#!/usr/bin/env python
"""Run the whole path with no dataset: synthetic videos -> train on CPU -> 30-view test -> predict.

    python tools/demo.py                       # about five minutes on 2 CPU cores
    python tools/demo.py SOLVER.MAX_EPOCH 2    # quicker, less accurate
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from vidrec.engine.demo import run_demo  # noqa: E402

if __name__ == "__main__":
    run_demo()
