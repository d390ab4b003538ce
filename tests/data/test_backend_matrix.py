"""The decoder matrix: every backend that may read a file returns the frames of a plain sequential
PyAV decode (written here, independently of vidrec), or is refused for that file with a reason; and
every tool reports the same frame count, duration (from presentation times) and verdict.

Files: the generated set (tests/videos.py) plus MPEG program / transport streams with a non-zero
first timestamp, an AVI whose header claims many more frames than decode, and the real samples
when present (extra cases).
"""
from pathlib import Path

import av
import numpy as np
import pytest

from tests.videos import pattern, samples_dir, write_video
from vidrec.data import backends
from vidrec.data.datasets import load_test_views
from vidrec.data.decoders import FrameStream, probe, read_frames
from vidrec.inference.stream import ClipStream

GENERATED = ["h264", "mpeg4", "vp9", "mjpeg", "av1", "odd", "long", "mkv40", "rot90", "rot270", "rot180",
             "rot90_w48", "mkv_audio", "avi_audio", "avi_gap", "tiny", "vfr", "corrupt", "lying", "one"]
EXTRA = ["ps", "ts", "ts_mpeg2", "mpeg4_bf_mp4", "avi_lying", "h264_avi", "ps_repeated", "flv"]
REAL = ["demo.mp4", "test.mp4", "test.avi", "flipping_a_pancake.mkv", "corrupted.mp4", "unordered.mov",
        "video_90.mov", "video_270.mov"]


@pytest.fixture(scope="session")
def extra(tmp_path_factory):
    d = tmp_path_factory.mktemp("matrix")
    ramp = lambda i: (7 * i) % 200 + 20  # noqa: E731
    return {
        # mpeg2video in an MPEG program stream: the muxer starts it at 0.54 s, as real .mpg files do.
        "ps": write_video(d / "ps.mpg", n=60, codec="mpeg2video", fmt="mpeg", values=ramp),
        "ts": write_video(d / "ts.ts", n=60, fmt="mpegts", values=ramp),
        "ts_mpeg2": write_video(d / "ts2.ts", n=60, codec="mpeg2video", fmt="mpegts", values=ramp),
        "mpeg4_bf_mp4": write_video(d / "mpeg4_bf.mp4", n=60, codec="mpeg4", bframes=2, values=ramp,
                                    options={"b": "2M"}),
        "h264_avi": write_video(d / "h264_bf.avi", n=60, bframes=2, values=ramp),
        # H.264 in FLV with a key frame every 10: decord's frame 119 after a seek is another frame
        "flv": write_video(d / "h264.flv", n=120, fmt="flv", values=pattern, options={"g": "10"}),
        # FFmpeg's MPEG-PS muxer repeats timestamps here (frames 25-28 stamped t, t+1, t, t+1): a repeated
        # stamp is another frame for every tool
        "ps_repeated": write_video(d / "ps_repeated.mpg", n=150, codec="mpeg2video", fmt="mpeg", bframes=2,
                                   values=pattern, options={"g": "12", "b": "2M"}),
        # 68 frames whose timestamps run 0..443 at 15 fps: the AVI header counts 444 chunks.
        "avi_lying": write_video(d / "lying.avi", n=68, codec="mpeg4", fps=15, values=ramp,
                                 pts=[round(i * 443 / 67) for i in range(68)]),
    }


def reference(path):
    """Plain sequential PyAV decode: RGB frames (display rotation applied) and their times from the first."""
    frames, times = [], []
    with av.open(path) as c:
        s = c.streams.video[0]
        try:
            for f in c.decode(s):
                img = f.to_ndarray(format="rgb24")
                k = int(round((f.rotation or 0) / 90.0)) % 4
                frames.append(np.rot90(img, k) if k else img)
                times.append(float(f.pts * s.time_base))
        except av.error.FFmpegError:
            pass  # a broken stream: the frames before the break
    # Frames come out in presentation order; AVI packets carry decode-order stamps (1, 3, 2, ...), so
    # the presentation times are the stamps sorted.
    times = np.sort(np.asarray(times)) - min(times)
    return frames, times


def files(vids, extra):
    out = {k: vids[k] for k in GENERATED}
    out.update(extra)
    return out


def check_file(name, path, refusals):
    ref, ref_times = reference(path)
    n = len(ref)
    ids = sorted({0, n // 3, n // 2, n - 1, max(0, n - 4), min(n - 1, 2)})
    read_by = []
    for b in backends.names():
        mod = backends.backend(b)
        if mod.unavailable():
            continue
        why = mod.refuses(__import__("vidrec.data.video_index", fromlist=["index_video"]).index_video(path))
        if why:
            refusals.append((name, b, why))
            continue
        try:
            x, info = read_frames(path, ids, backend=b, fallback=False)
        except Exception as e:  # a backend may fail on a file, loudly: that is allowed (the next one reads it)
            refusals.append((name, b, f"fails: {e}"))
            continue
        read_by.append(b)
        for row, i in enumerate(ids):
            diff = np.abs(x[row].numpy().astype(np.float32) - ref[i].astype(np.float32)).mean()
            assert diff < 1.0, f"{name}: {b} frame {i} differs from a sequential decode by {diff:.1f}/255"
    assert "pyav" in read_by, f"{name}: the reference backend did not read it"

    # Every tool: the same count, duration and verdict.
    info = probe(path)
    stream = ClipStream(path, 4, 2, 32, 32, hop=3, cover_end=True)
    windows = list(stream)
    frames = FrameStream(path)
    times = np.array([t for _, t, _ in frames])
    _, views = load_test_views(path, 4, 2, 2, 1, 32, 32)
    dur = ref_times[-1] + 1.0 / info["fps"]  # the last frame is shown for one frame period
    assert info["num_frames"] == stream.num_frames_decoded == frames.frames_read == views["num_frames"] == n, name
    assert info["duration"] == pytest.approx(stream.duration) == pytest.approx(dur, abs=1e-3), name
    np.testing.assert_allclose(times, ref_times, atol=1e-6, err_msg=name)
    partial = info["status"] == "partial"
    assert bool(stream.warning) == bool(frames.warning) == bool(views.get("warning")) == partial, name
    # Clip times are the frames' presentation times.
    for w, _ in windows:
        assert w.start == pytest.approx(ref_times[w.start_frame], abs=1e-6), (name, w)
        end = ref_times[w.end_frame] if w.end_frame < n else dur
        assert w.end == pytest.approx(end, abs=1e-6), (name, w)
    return partial


def test_backend_matrix_generated(vids, extra, capsys):
    refusals, partial = [], []
    for name, path in files(vids, extra).items():
        if check_file(name, path, refusals):
            partial.append(name)
    assert partial == ["corrupt"]
    from vidrec.data.video_index import index_video
    assert index_video(extra["ps_repeated"]).repeated_ticks  # the case is still what it says
    refused = {(n, b) for n, b, _ in refusals if "fails" not in _}
    # The refusals the matrix found necessary (decord returns wrong frames there, silently).
    for must in [("ps", "decord"), ("ts", "decord"), ("ts_mpeg2", "decord"), ("avi_audio", "decord"),
                 ("mpeg4_bf_mp4", "decord"), ("h264_avi", "decord"), ("flv", "decord")]:
        assert must in refused
    with capsys.disabled():
        print("\nbackend refusals / failures:\n" + "\n".join(f"  {n}: {b}: {w}" for n, b, w in refusals))


def test_decord_is_really_wrong_where_refused(extra):
    """The reason for the container rule: decord's frame i is another frame in MPEG program/transport
    streams (silently: no error), or it cannot read them at all."""
    import decord

    silent = []
    for name in ("ps", "ts", "ts_mpeg2"):
        ref, _ = reference(extra[name])
        ids = [50, 10, 30]
        try:
            got = decord.VideoReader(extra[name], num_threads=1).get_batch(ids).asnumpy()
        except decord.DECORDError:
            continue  # loud, at least
        worst = max(np.abs(got[j].astype(float) - ref[i].astype(float)).mean() for j, i in enumerate(ids))
        assert worst > 10, name  # fails (and the rule can go) once decord reads these right
        silent.append(name)
    assert "ps" in silent
    ref, _ = reference(extra["flv"])  # FLV: the last frame, read after a seek
    got = decord.VideoReader(extra["flv"], num_threads=1).get_batch([116, 119]).asnumpy()
    assert np.abs(got[1].astype(float) - ref[119].astype(float)).mean() > 5  # fails once decord reads it right


def test_mpeg_ps_times_start_at_the_first_frame(extra):
    info = probe(extra["ps"])
    assert info["start_time"] == pytest.approx(0.54, abs=0.05)  # the file's first timestamp
    frames = FrameStream(extra["ps"])
    first = next(iter(frames))
    assert first[0] == 0 and first[1] == 0.0  # time 0 is the first frame


def test_lying_avi_times_from_timestamps(extra):
    """Header 444 frames, 68 decode, timestamps 0..443 at 15 fps: the video spans 29.6 s, not 68 / 15."""
    path = extra["avi_lying"]
    with av.open(path) as c:
        assert c.streams.video[0].frames > 400
    info = probe(path)
    assert info["num_frames"] == 68 and info["duration"] == pytest.approx(444 / 15, abs=0.1)
    stream = ClipStream(path, 4, 2, 32, 32, hop_seconds=5.0, cover_end=True)
    windows = [w for w, _ in stream]
    assert windows[-1].end == pytest.approx(444 / 15, abs=0.1) and windows[-1].start > 25
    starts = [w.start for w in windows[:-1]]
    assert all(abs(s - 5 * k) < 0.5 for k, s in enumerate(starts))  # every 5 s of presentation time


def test_vfr_clip_times(vids):
    """Variable frame rate (gaps every 10th slot, first timestamp 2 s): clip times are presentation times."""
    path = vids["vfr"]
    ref, ref_times = reference(path)
    stream = ClipStream(path, 4, 2, 32, 32, hop_seconds=0.5)
    windows = [w for w, _ in stream]
    for w in windows:
        assert w.start == pytest.approx(ref_times[w.start_frame])
        assert w.start_frame == int(np.searchsorted(ref_times, w.start - 1e-9))
    last = windows[-1]
    assert last.start > last.start_frame / 25 + 0.2  # index / fps would be 0.32 s early here


@pytest.mark.parametrize("name", REAL)
def test_backend_matrix_real_samples(name):
    """Extra cases: the real sample videos (skipped when absent)."""
    path = Path(samples_dir()) / name
    if not path.is_file():
        pytest.skip(f"extra real-sample case: {path} not found")
    refusals = []
    partial = check_file(name, str(path), refusals)
    assert partial == (name == "corrupted.mp4")
    if name == "test.avi":
        assert any(b == "decord" and "MPEG-4 Part 2" in w for _, b, w in refusals)
