"""The optional TorchCodec backend: the frames of PyAV where it may read, refused (with the reason)
where it returns wrong frames, broken streams handled like PyAV, and a one-line reason plus a
fallback wherever the package or FFmpeg's shared libraries are missing.

Tests marked ``needs_torchcodec`` skip with the backend's own one-line reason where it cannot run;
the others simulate a missing package / missing FFmpeg libraries and run everywhere.
tests/data/test_backend_matrix.py covers TorchCodec too, wherever it is available.
"""
import logging
import sys
import types

import numpy as np
import pytest
import torch

from tests.data.conftest import use_synth
from tests.data.test_backend_matrix import reference
from tests.videos import write_video
from vidrec.data import VideoError, build_dataset, datasets
from vidrec.data.backends import torchcodec_backend as tcb
from vidrec.data.decoders import read_frames, read_frames_at
from vidrec.data.video_index import index_video

REASON = tcb.unavailable()
needs_torchcodec = pytest.mark.skipif(bool(REASON), reason=REASON or "torchcodec available")

# Where TorchCodec may read: every generated kind except the AVI files (refused).
READABLE = ["h264", "vp9", "av1", "odd", "long", "mkv40", "rot90", "rot270", "rot180", "rot90_w48", "mkv_audio",
            "tiny", "vfr", "lying", "one"]
ROTATED = ["rot90", "rot270", "rot180", "rot90_w48"]
# What TorchCodec printed on a machine without FFmpeg's libraries (torchcodec 0.17, shortened).
NO_FFMPEG = """Could not load libtorchcodec. Likely causes:
          1. FFmpeg is not properly installed in your environment. We support
             versions 4, 5, 6, 7, 8, and 9, and we attempt to load libtorchcodec
        The following exceptions were raised as we tried to load libtorchcodec:

[start of libtorchcodec loading traceback]
FFmpeg version 9:
Traceback (most recent call last):
  File "/x/site-packages/torch/_ops.py", line 1516, in load_library
    ctypes.CDLL(path)
OSError: libavutil.so.61: cannot open shared object file: No such file or directory

The above exception was the direct cause of the following exception:

OSError: Could not load this library: /x/site-packages/torchcodec/libtorchcodec_core9.so
FFmpeg version 5:
OSError: libavutil.so.57: cannot open shared object file: No such file or directory
FFmpeg version 4:
OSError: libavutil.so.56: cannot open shared object file: No such file or directory
[end of libtorchcodec loading traceback]."""


@pytest.fixture
def fresh_check():
    """``unavailable()`` is cached per process: clear it around a simulation."""
    tcb.unavailable.cache_clear()
    yield
    tcb.unavailable.cache_clear()


def _hide_torchcodec(monkeypatch):
    for name in [m for m in sys.modules if m == "torchcodec" or m.startswith("torchcodec.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torchcodec", None)  # import torchcodec -> ImportError


def _fake_torchcodec(monkeypatch, load_error: str):
    """An installed torchcodec whose FFmpeg ops did not load (what import torchcodec gives without FFmpeg)."""
    for name in [m for m in sys.modules if m == "torchcodec" or m.startswith("torchcodec.")]:
        monkeypatch.delitem(sys.modules, name)
    pkg = types.ModuleType("torchcodec")
    pkg.__path__, pkg.__version__, pkg.ffmpeg_major_version = [], "0.17.0", None
    decoders = types.ModuleType("torchcodec.decoders")
    decoders.VideoDecoder = object
    utils = types.ModuleType("torchcodec._internally_replaced_utils")

    def load_core_libraries():
        raise RuntimeError(load_error)

    utils.load_core_libraries = load_core_libraries
    for mod in (pkg, decoders, utils):
        monkeypatch.setitem(sys.modules, mod.__name__, mod)


def _diff(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean())


# -- without TorchCodec (simulated): one line, and the next backend reads ---------------------------------


def test_reason_is_one_line():
    assert "\n" not in REASON and len(REASON) < 300
    assert REASON == "" or REASON.startswith("torchcodec")


def test_not_installed_falls_back(monkeypatch, fresh_check, vids):
    _hide_torchcodec(monkeypatch)
    why = tcb.unavailable()
    assert why == 'torchcodec is not installed (pip install "vidrec[torchcodec]", and FFmpeg\'s shared libraries)'
    ref, _ = reference(vids["h264"])
    x, info = read_frames(vids["h264"], [0, 7, 39], backend=["torchcodec", "pyav"])
    assert info["backend"] == "pyav" and info["refused"] == {"torchcodec": why}
    assert max(_diff(x[k], ref[i]) for k, i in enumerate([0, 7, 39])) < 1.0
    x, info = read_frames(vids["h264"], [3], backend="torchcodec")  # a single name falls back to PyAV
    assert info["backend"] == "pyav"
    with pytest.raises(VideoError) as e:
        read_frames(vids["h264"], [3], backend="torchcodec", fallback=False)
    assert str(e.value) == f"{vids['h264']}: torchcodec refused: {why}"


def test_no_ffmpeg_libraries_is_one_line(monkeypatch, fresh_check, vids):
    _fake_torchcodec(monkeypatch, NO_FFMPEG)
    why = tcb.unavailable()
    assert why == ("torchcodec 0.17.0 found no FFmpeg shared libraries (libavutil.so.56-61 not found; install "
                   "FFmpeg 4 to 9, e.g. apt-get install ffmpeg)")
    x, info = read_frames(vids["h264"], [1, 2], backend=["torchcodec", "pyav"])
    assert info["backend"] == "pyav" and info["refused"]["torchcodec"] == why


def test_library_mismatch_is_one_line(monkeypatch, fresh_check):
    text = NO_FFMPEG.replace("OSError: libavutil.so.57: cannot open shared object file: No such file or directory",
                             "OSError: /x/torchcodec/libtorchcodec_core5.so: undefined symbol: _ZN3c104impl3fooEv")
    _fake_torchcodec(monkeypatch, text)
    why = tcb.unavailable()
    assert "\n" not in why and why.startswith("torchcodec 0.17.0 cannot load its FFmpeg libraries (OSError: ")
    assert "undefined symbol" in why and "torch" in why.split(")")[-1]


class _CudaWheelOnCpuTorch:
    """An import finder: ``import torchcodec`` fails as PyPI's CUDA wheel does with a CPU-only torch."""

    def find_spec(self, name, path=None, target=None):
        if name == "torchcodec":
            try:
                raise OSError("libnvrtc.so.13: cannot open shared object file: No such file or directory")
            except OSError as e:
                raise OSError("Could not load this library: /x/torchcodec/libtorchcodec_image.so") from e
        return None


def test_cuda_wheel_with_cpu_torch_is_one_line(monkeypatch, fresh_check):
    _hide_torchcodec(monkeypatch)
    monkeypatch.delitem(sys.modules, "torchcodec")
    monkeypatch.setattr(sys, "meta_path", [_CudaWheelOnCpuTorch()] + sys.meta_path)
    assert tcb.unavailable() == ("torchcodec cannot be imported (OSError: libnvrtc.so.13: cannot open shared object "
                                 "file: No such file or directory; a CUDA build of torchcodec needs a CUDA torch, "
                                 "for a CPU torch use its CPU build)")


def test_dataset_decoder_list_without_torchcodec(monkeypatch, fresh_check, small_cfg, synth):
    _hide_torchcodec(monkeypatch)
    cfg = use_synth(small_cfg, synth)
    cfg.DATA.DECODER = ["torchcodec", "pyav"]
    ds = build_dataset(cfg, "train")
    clip, label, index, n_failed = ds[(2, 7)]
    assert clip.shape == (8, 56, 56, 3) and n_failed == 0


# -- with TorchCodec ------------------------------------------------------------------------------------------


@needs_torchcodec
@pytest.mark.parametrize("name", READABLE)
def test_frames_equal_pyav(vids, name):
    """Every frame, read at once and by scattered ids, is PyAV's frame (presentation order from the first)."""
    path = vids[name]
    ref, ref_times = reference(path)
    n = len(ref)
    assert tcb.refuses(index_video(path)) == ""
    x, info = read_frames(path, lambda k: np.arange(k), backend="torchcodec", fallback=False)
    assert info["backend"] == "torchcodec" and info["num_frames"] == n and x.shape[0] == n
    assert x.dtype == torch.uint8 and x.shape[1:] == ref[0].shape and x.shape[-1] == 3
    assert max(_diff(x[i], ref[i]) for i in range(n)) < 1.0, name
    np.testing.assert_allclose(info["times"], ref_times, atol=1e-6)
    ids = [n - 1, n // 2, 0, max(0, n - 3), n // 3]  # any order: returned as asked
    y, _ = read_frames(path, ids, backend="torchcodec", fallback=False)
    assert max(_diff(y[k], ref[i]) for k, i in enumerate(ids)) < 1.0, name
    p, _ = read_frames(path, ids, backend="pyav", fallback=False)
    assert max(_diff(y[k], p[k]) for k in range(len(ids))) < 1.0, name


@needs_torchcodec
@pytest.mark.parametrize("name", ROTATED)
def test_rotation_applied_once(vids, name):
    """TorchCodec applies the display matrix itself (its metadata gives the displayed size): frames come
    out as PyAV's (which the PyAV backend rotates), and the backend does not rotate them again."""
    from torchcodec.decoders import VideoDecoder

    path = vids[name]
    meta = VideoDecoder(path).metadata
    assert meta.rotation is not None and meta.rotation % 360 != 0
    x, _ = read_frames(path, [0, 5, 11], backend="torchcodec", fallback=False)
    p, _ = read_frames(path, [0, 5, 11], backend="pyav", fallback=False)
    displayed = {"rot90": (64, 32), "rot270": (64, 32), "rot180": (32, 64), "rot90_w48": (64, 48)}[name]
    assert tuple(x.shape[1:3]) == tuple(p.shape[1:3]) == displayed == (meta.height, meta.width)
    assert max(_diff(x[k], p[k]) for k in range(3)) < 1.0
    # The marker block (top-left as stored) has moved to another corner, the same one in both.
    where = lambda f: np.argwhere(f.numpy()[..., 0] > 200).mean(0) / np.array(f.shape[:2])  # noqa: E731
    assert np.allclose(where(x[0]), where(p[0]), atol=0.02)
    r, c = where(x[0])
    assert not (r < 0.5 and c < 0.5)


@needs_torchcodec
def test_times_and_vfr(vids):
    """Frame ids and times mean the same in every backend: VFR with gaps, first timestamp 2 s."""
    path = vids["vfr"]
    ref, ref_times = reference(path)
    want = [0.0, 0.39, 1.0, 2.5, ref_times[-1]]
    x, info = read_frames_at(path, want, backend="torchcodec", fallback=False)
    p, pinfo = read_frames_at(path, want, backend="pyav", fallback=False)
    assert list(info["indices"]) == list(pinfo["indices"])
    assert max(_diff(x[k], p[k]) for k in range(len(want))) < 1.0


@needs_torchcodec
def test_broken_stream_like_pyav(vids, capfd):
    """Packets broken from the 30th: 28 frames decode. TorchCodec stops where PyAV stops; "keep" uses
    them with a warning, "fail" is a one-line error; nothing reaches the console."""
    path = vids["corrupt"]
    capfd.readouterr()
    got, ref = {}, {}
    for b, out in (("torchcodec", got), ("pyav", ref)):
        out["all"] = read_frames(path, lambda n: np.arange(n), backend=b, fallback=False)
        out["ids"] = read_frames(path, [0, 10, 27, 40], backend=b, fallback=False)
    for key in ("all", "ids"):
        (x, info), (p, pinfo) = got[key], ref[key]
        assert info["backend"] == "torchcodec" and info["num_frames"] == pinfo["num_frames"] == 28
        assert x.shape == p.shape and max(_diff(x[k], p[k]) for k in range(x.shape[0])) < 1.0
        assert info["warning"].startswith("decoding stops after 28 of 60 frames (RuntimeError: ")
        assert info.get("clamped") == pinfo.get("clamped")
        assert "\n" not in info["warning"] and ".cpp" not in info["warning"]
    with pytest.raises(VideoError, match=r"torchcodec: decoding stops after 28 of 60 frames") as e:
        read_frames(path, [0, 40], backend="torchcodec", fallback=False, partial="fail")
    assert "\n" not in str(e.value)
    # with "fail", the list goes on to PyAV, which fails the same way
    with pytest.raises(VideoError, match=r"pyav: decoding stops after 28"):
        read_frames(path, [0, 40], backend=["torchcodec", "pyav"], partial="fail")
    assert capfd.readouterr().err == ""


@needs_torchcodec
def test_refused_where_it_returns_wrong_frames(vids, tmp_path):
    """The reason for each refusal: TorchCodec's frame i is another frame there (silently), or it fails.
    Fails (and the rule can go) once TorchCodec reads these right."""
    from torchcodec.decoders import VideoDecoder

    ramp = lambda i: (7 * i) % 200 + 20  # noqa: E731
    files = {
        "ps": write_video(tmp_path / "ps.mpg", n=60, codec="mpeg2video", fmt="mpeg", values=ramp),
        "ts_mpeg2": write_video(tmp_path / "ts2.ts", n=60, codec="mpeg2video", fmt="mpegts", values=ramp),
        "avi_mpeg4_bframes": vids["avi_audio"],
        # H.264 B-frames in AVI: the packets' timestamps do not show them (the index cannot tell)
        "avi_h264_bframes": write_video(tmp_path / "h264_bf.avi", n=60, bframes=2, values=ramp),
    }
    for name, path in files.items():
        index = index_video(path)
        assert tcb.refuses(index), name
        ref, _ = reference(path)
        wrong = 0
        for i in (5, 17, 30, 40):  # one decoder per frame: a seek each
            try:
                f = VideoDecoder(path, seek_mode="exact", dimension_order="NHWC").get_frame_at(i).data.numpy()
                wrong += _diff(f, ref[i]) > 3  # neighbouring frames differ by 7 grey levels
            except RuntimeError:
                wrong += 1
        assert wrong >= 2, name
    assert not index_video(files["avi_h264_bframes"]).reordered


@needs_torchcodec
def test_timestamp_check_catches_wrong_frames(vids, tmp_path, monkeypatch):
    """Without the refusal rules, the timestamp check still keeps wrong frames out: TorchCodec's
    read fails in one line and PyAV reads the file."""
    monkeypatch.setattr(tcb, "REFUSED_CONTAINERS", {})
    path = write_video(tmp_path / "ps.mpg", n=60, codec="mpeg2video", fmt="mpeg", values=lambda i: (7 * i) % 200 + 20)
    ref, _ = reference(path)
    ids = [5, 30, 56]
    x, info = read_frames(path, ids, backend=["torchcodec", "pyav"])
    assert info["backend"] == "pyav"
    assert info["fallback_reason"].startswith("torchcodec returned the frame shown at ")
    assert max(_diff(x[k], ref[i]) for k, i in enumerate(ids)) < 1.0


def test_cpp_location_left_out():
    e = RuntimeError("decode_av_frame, /__w/torchcodec/src/torchcodec/_core/SingleStreamDecoder.cpp:1493, "
                     "Could not push packet to decoder: Invalid data found when processing input")
    assert tcb._reason(e, "x.mp4") == ("RuntimeError: Could not push packet to decoder: Invalid data found when "
                                       "processing input")


@needs_torchcodec
def test_errors_are_one_line(vids):
    """What TorchCodec cannot open (the index read it: here another file's index) or counts differently
    is a one-line VideoError, so the next backend reads it."""
    with pytest.raises(VideoError) as e:
        tcb.read(vids["text"], np.array([0]), index_video(vids["h264"]))
    assert str(e.value) == (f"{vids['text']}: torchcodec: RuntimeError: Could not open input file: Invalid data "
                            f"found when processing input")
    with pytest.raises(VideoError, match="torchcodec counts 40 frames where the stream has 120"):
        tcb.read(vids["h264"], np.array([0]), index_video(vids["long"]))


@needs_torchcodec
def test_dataset_decoder_list(small_cfg, synth, monkeypatch, caplog):
    """DATA.DECODER [torchcodec, pyav]: the dataset reads with TorchCodec, and its items are PyAV's."""
    cfg = use_synth(small_cfg, synth)
    backends_used = []
    real = datasets.read_frames

    def spy(p, idx, **kw):
        x, info = real(p, idx, **kw)
        backends_used.append(info["backend"])
        return x, info

    monkeypatch.setattr(datasets, "read_frames", spy)
    items = {}
    for order in (["torchcodec", "pyav"], ["pyav"]):
        cfg.DATA.DECODER = order
        train, val = build_dataset(cfg, "train"), build_dataset(cfg, "val")
        with caplog.at_level(logging.WARNING, logger="vidrec.data"):
            items[order[0]] = (train[(4, 123)], val[1])
    assert backends_used == ["torchcodec", "torchcodec", "pyav", "pyav"]
    (clip, label, _, n_failed), view = items["torchcodec"]
    (pclip, plabel, _, _), pview = items["pyav"]
    assert clip.shape == (8, 56, 56, 3) and clip.dtype == torch.uint8 and n_failed == 0 and label == plabel
    assert _diff(clip, pclip) < 1.0
    union, punion = view["union"], pview["union"]
    assert union["frames"].shape == punion["frames"].shape == (24, 48, 48, 3) and view["error"] == ""
    assert torch.equal(union["rows"], punion["rows"]) and torch.equal(union["offsets"], punion["offsets"])
    assert _diff(union["frames"], punion["frames"]) < 1.0
    assert "torchcodec" not in caplog.text
