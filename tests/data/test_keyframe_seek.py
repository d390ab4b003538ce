"""PyAV reads start at the key frame before a clip (the index knows where key frames are), and return
exactly the frames of a plain sequential decode: closed and open groups of pictures, B-frames, AVI's
decode-order stamps, MPEG transport/program streams, HEVC, FLV, VP9, all-intra MJPEG, variable frame rate,
and a program stream whose muxer gave several frames the same timestamp (never sought: read from the start).
MPEG program streams are never sought at all: the last test shows why."""
import dataclasses

import av
import numpy as np
import pytest

from tests.videos import pattern, write_video
from vidrec.data.backends import pyav_backend
from vidrec.data.video_index import index_video

N = 150
CASES = {  # name: (file, write_video options, group of pictures)
    "h264_mp4": ("h264.mp4", dict(bframes=2, options={"g": "10"}), 10),
    "h264_open_gop": ("open.mp4", dict(bframes=3, options={"g": "12", "x264-params": "open-gop=1:ref=4"}), 12),
    "h264_mkv": ("h264.mkv", dict(bframes=2, options={"g": "10"}), 10),
    "h264_avi": ("h264.avi", dict(bframes=2, options={"g": "10"}), 10),
    "mpeg4_avi": ("mpeg4.avi", dict(codec="mpeg4", bframes=2, options={"g": "10", "b": "2M"}), 10),
    "mpeg2_ts": ("mpeg2.ts", dict(codec="mpeg2video", bframes=2, fmt="mpegts", options={"g": "12", "b": "2M"}), 12),
    "vp9_webm": ("vp9.webm", dict(codec="libvpx-vp9", options={"g": "10"}), 10),
    "mjpeg_avi": ("mjpeg.avi", dict(codec="mjpeg", pix="yuvj420p"), 1),
    "h264_vfr": ("vfr.mp4", dict(bframes=2, options={"g": "10"}, pts=[i + i // 10 for i in range(N)]), 10),
    "hevc_open_gop": ("hevc.mkv", dict(codec="libx265",
                                       options={"x265-params": "keyint=12:open-gop=1:bframes=3:log-level=none"}), 12),
    "h264_flv": ("h264.flv", dict(fmt="flv", bframes=2, options={"g": "10"}), 10),

    # FFmpeg's MPEG-PS muxer at this rate repeats two timestamps (138600, 142200) around frame 26
    "mpeg2_ps_repeated_stamps": ("mpeg2.mpg", dict(codec="mpeg2video", bframes=2, fmt="mpeg",
                                                    options={"g": "12", "b": "2M"}), 12),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("keyframes")
    return {k: write_video(d / f, n=N, values=pattern, **kw) for k, (f, kw, _) in CASES.items()}


def sequential(path):
    """Plain PyAV decode from the start: the frames, and which of them are key frames."""
    frames, keys = [], []
    with av.open(path) as c:
        for f in c.decode(c.streams.video[0]):
            frames.append(f.to_ndarray(format="rgb24"))
            keys.append(bool(f.key_frame))
    return frames, keys


class Spy:
    """Counts, per read, where decoding started and how many frames it decoded before the first wanted one."""

    def __init__(self, monkeypatch):
        self.reads, real = [], pyav_backend.decoded_frames

        def spy(path, index, start_tick=None, threads="SLICE"):
            rec = {"start_tick": start_tick, "frames": []}
            self.reads.append(rec)
            for fid, frame in real(path, index, start_tick, threads):
                rec["frames"].append(fid)
                yield fid, frame

        monkeypatch.setattr(pyav_backend, "decoded_frames", spy)


@pytest.mark.parametrize("name", list(CASES))
def test_clips_from_the_key_frame_equal_a_sequential_decode(files, name, monkeypatch):
    path, gop = files[name], CASES[name][2]
    ref, ref_keys = sequential(path)
    index = index_video(path)
    assert index.num_frames == len(ref) == N  # a repeated stamp is another frame, not a duplicate
    if not name.endswith("avi"):  # AVI packets carry decode-order stamps: their key ids are approximate
        assert list(index.keys) == [i for i, k in enumerate(ref_keys) if k] or index.repeated_ticks
    spy, lead = Spy(monkeypatch), []
    for first in range(0, N - 8, 7):
        ids = np.unique(np.concatenate([np.arange(first, first + 8), [min(N - 1, first + 20)]]))
        got = pyav_backend.read(path, ids, index).frames
        for i in ids:
            assert i in got and np.array_equal(got[i], ref[i]), f"{name}: frame {i} (clip from {first})"
        (rec,) = spy.reads[-1:]  # one decode per read: no fallback to frame 0 after a seek
        if rec["start_tick"] is not None:
            assert len(spy.reads) == first // 7 + 1, f"{name}: read from {first} needed a second decode"
            lead.append(sum(f < first for f in rec["frames"]))
    if index.repeated_ticks:
        assert not lead  # a seek could not be placed: every read starts at frame 0
        return

    # Seeks happened, and each started within one group of pictures of the clip (two when groups may be open).
    assert len(lead) >= 15 and max(lead) < gop * (1 + index.open_gop), (name, lead)


def test_open_groups_are_detected(files):
    assert index_video(files["h264_open_gop"]).open_gop and index_video(files["mpeg2_ts"]).open_gop
    assert not index_video(files["h264_mp4"]).open_gop and not index_video(files["vp9_webm"]).open_gop
    assert index_video(files["mpeg2_ps_repeated_stamps"]).repeated_ticks
    assert not index_video(files["h264_vfr"]).repeated_ticks


def test_without_key_frame_flags_a_margin_is_used(vids):
    """A file whose packets carry no key-frame flags: the seek starts 2 s before the clip (FFmpeg picks the
    key frame before that) and still returns the sequential frames."""
    index = dataclasses.replace(index_video(vids["long"]), keys=None)
    want = np.array([105, 110, 119])
    assert pyav_backend.seek_tick(index, 105) == int(index.ticks[105 - 50])
    assert pyav_backend.seek_tick(index, 90) is None  # under 4 s in: from the start
    ref, _ = sequential(vids["long"])
    got = pyav_backend.read(vids["long"], want, index).frames
    assert all(np.array_equal(got[i], ref[i]) for i in want)


def test_seeking_backends_refuse_repeated_stamps(files):
    from vidrec.data import backends

    index = dataclasses.replace(index_video(files["h264_mp4"]), repeated_ticks=True)
    for name in ("decord", "torchcodec"):
        assert "share a timestamp" in backends.backend(name).refuses(index)
    assert backends.backend("pyav").refuses(index) == ""  # it reads them from the start


def test_program_streams_are_read_from_the_start(tmp_path, monkeypatch):
    """After a seek in an MPEG-1 program stream FFmpeg drops frames and stamps others wrongly (a frame showing
    frame 30 carries frame 33's timestamp): no check of the stamps can catch that, so PS files are never
    sought. Here every clip of a 12 s file equals the sequential decode, and no read seeks."""
    path = write_video(tmp_path / "mpeg1.mpg", n=300, codec="mpeg1video", bframes=2, fmt="mpeg", values=pattern,
                       options={"g": "12", "b": "2M"})
    ref, _ = sequential(path)
    index = index_video(path)
    spy = Spy(monkeypatch)
    for first in range(0, len(ref) - 8, 9):
        ids = np.arange(first, first + 8)
        got = pyav_backend.read(path, ids, index).frames
        assert all(np.array_equal(got[i], ref[i]) for i in ids), f"clip from {first}"
    assert all(r["start_tick"] is None for r in spy.reads)
    # what a seek there gives: a frame with a stamp in the index but the pixels of another frame
    monkeypatch.setattr(pyav_backend, "NEVER_SEEK", {})
    wrong = pyav_backend.read(path, np.arange(33, 41), index).frames
    assert not all(np.array_equal(wrong[i], ref[i]) for i in range(33, 41))  # fails once FFmpeg seeks PS right


def test_a_frame_dropped_after_a_seek_is_caught(tmp_path, monkeypatch):
    """The same kind of file, 150 frames, sought anyway: after the seek for frame 14 the decoder drops two
    frames; their successors' stamps do not match the ids they would be counted as, so the read starts again
    from frame 0 and returns the right frames."""
    path = write_video(tmp_path / "mpeg1.mpg", n=N, codec="mpeg1video", bframes=2, fmt="mpeg", values=pattern,
                       options={"g": "12", "b": "2M"})
    ref, _ = sequential(path)
    index = index_video(path)
    monkeypatch.setattr(pyav_backend, "NEVER_SEEK", {})
    spy = Spy(monkeypatch)
    got = pyav_backend.read(path, np.arange(14, 22), index).frames
    assert all(np.array_equal(got[i], ref[i]) for i in range(14, 22))
    assert [r["start_tick"] is None for r in spy.reads] == [False, True]  # a seek, caught, then from the start


def test_check_videos_says_when_stamps_repeat(files):
    from vidrec.data import video_check

    row = video_check.check_one(files["mpeg2_ps_repeated_stamps"])
    assert row["ok"] and row["frames"] == N and "several frames share a timestamp" in row["reason"]
    assert "share a timestamp" not in video_check.check_one(files["h264_mp4"])["reason"]
