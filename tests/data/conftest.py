"""Data-pipeline fixtures: a small config and a synthetic dataset.

The generated videos (``vids``) and the real samples (``samples``, ``media``) are in
tests/conftest.py; the video writers in tests/videos.py.
"""
import pytest


@pytest.fixture
def small_cfg():
    from vidrec.config.defaults import get_cfg

    cfg = get_cfg()
    cfg.MODEL.NUM_CLASSES = 4
    cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE = 8, 2
    cfg.DATA.TRAIN_JITTER_SCALES, cfg.DATA.TRAIN_CROP_SIZE = [64, 72], 56
    cfg.DATA.TEST_SHORT_SIDE, cfg.DATA.TEST_CROP_SIZE = 48, 48
    cfg.DATA.MAX_RETRIES = 3
    return cfg


@pytest.fixture(scope="session")
def synth(tmp_path_factory):
    from vidrec.data.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(tmp_path_factory.mktemp("synth"), 4, (3, 2, 2), num_frames=32)


def use_synth(cfg, synth):
    cfg.DATA.PATH_TO_DATA_DIR = synth["root"]
    cfg.DATA.TRAIN_LIST, cfg.DATA.VAL_LIST, cfg.DATA.TEST_LIST = synth["train"], synth["val"], synth["test"]
    return cfg
