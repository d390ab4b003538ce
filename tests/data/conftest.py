"""Tiny generated videos (PyAV) and the shared real sample videos."""
import os
from pathlib import Path

import av
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def value(i: int) -> int:
    """Grey level of frame i in the generated videos (flat frames survive compression)."""
    return 10 + 6 * (i % 40)


def write_video(path, n=40, size=(48, 64), codec="libx264", pix="yuv420p", fps=25, fmt=None, values=value):
    with av.open(str(path), "w", format=fmt) as out:
        s = out.add_stream(codec, rate=fps)
        s.height, s.width, s.pix_fmt = size[0], size[1], pix
        for i in range(n):
            f = np.full((size[0], size[1], 3), values(i), np.uint8)
            out.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(s.encode())
    return str(path)


def write_audio_only(path):
    with av.open(str(path), "w") as out:
        s = out.add_stream("aac", rate=16000)
        for i in range(10):
            fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            fr.sample_rate, fr.pts = 16000, i * 1024
            out.mux(s.encode(fr))
        out.mux(s.encode())
    return str(path)


@pytest.fixture(scope="session")
def vids(tmp_path_factory):
    """name -> path of generated videos, good and bad."""
    d = tmp_path_factory.mktemp("vids")
    v = {
        "h264": write_video(d / "h264.mp4"),
        "mpeg4": write_video(d / "mpeg4.avi", codec="mpeg4"),
        "vp9": write_video(d / "vp9.webm", n=24, codec="libvpx-vp9"),
        "mjpeg": write_video(d / "mjpeg.avi", n=24, codec="mjpeg", pix="yuvj420p"),
        "av1": write_video(d / "av1.mkv", n=24, size=(64, 64), codec="libsvtav1"),
        "odd": write_video(d / "odd.mp4", n=24, size=(33, 47), pix="yuv444p"),
        "one": write_video(d / "one.mp4", n=1),
        "long": write_video(d / "long.mp4", n=120, values=lambda i: 8 + 2 * i),
        "mkv40": write_video(d / "mkv40.mkv", n=40),
    }
    data = Path(v["mkv40"]).read_bytes()
    (d / "lying_header.mkv").write_bytes(data[: int(len(data) * 0.6)])  # header says 40 frames, fewer decode
    v["lying"] = str(d / "lying_header.mkv")
    (d / "zero.mp4").write_bytes(b"")
    h264 = Path(v["h264"]).read_bytes()
    (d / "truncated.mp4").write_bytes(h264[: len(h264) // 2])
    (d / "text.mp4").write_text("this is not a video\n" * 50)
    (d / "random.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    v.update(zero=str(d / "zero.mp4"), truncated=str(d / "truncated.mp4"), text=str(d / "text.mp4"),
             random=str(d / "random.mp4"), audio=write_audio_only(d / "audio.m4a"), missing=str(d / "missing.mp4"))
    return v


BAD = ["missing", "zero", "truncated", "text", "random", "audio"]


@pytest.fixture(scope="session")
def samples():
    """Folder of the real sample videos (VIDREC_SAMPLE_VIDEOS or ../shared/videos)."""
    d = Path(os.environ.get("VIDREC_SAMPLE_VIDEOS", REPO.parent / "shared" / "videos"))
    if not (d / "demo.mp4").is_file():
        pytest.skip(f"real sample videos not found at {d} (set VIDREC_SAMPLE_VIDEOS)")
    return d


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
