"""Clip timing maths and the bounded-memory clip stream."""
import math

import numpy as np
import pytest
import torch

from vidrec.data import VideoError, read_frames
from vidrec.data.transforms import eval_transform
from vidrec.inference.stream import ClipStream
from vidrec.inference.windows import hop_frames, window_starts, windows

from tests.videos import write_video


def test_hop_frames():
    assert hop_frames(None, None, 30, default=7) == 7
    assert hop_frames(5) == 5
    assert hop_frames(hop_seconds=1.0, fps=29.97) == 30
    assert hop_frames(hop_seconds=0.01, fps=25) == 1  # never 0
    for bad in (dict(hop=0), dict(hop=2.5), dict(hop_seconds=-1, fps=25), dict(hop_seconds=1, fps=0),
                dict(hop=2, hop_seconds=1, fps=25)):
        with pytest.raises(ValueError):
            hop_frames(**bad)


def test_window_starts_and_times():
    assert window_starts(20, 7, 5) == [0, 5, 10]               # last start 13 is not on the grid
    assert window_starts(20, 7, 5, cover_end=True) == [0, 5, 10, 13]
    assert window_starts(17, 7, 5, cover_end=True) == [0, 5, 10]  # grid already ends at the last frame
    assert window_starts(7, 7, 3) == [0]
    assert window_starts(3, 7, 3, cover_end=True) == [0]       # shorter than a window: one looped window
    ws = windows(20, 4, 2, 5, fps=10.0, cover_end=True)
    assert [(w.start_frame, w.end_frame) for w in ws] == [(0, 7), (5, 12), (10, 17), (13, 20)]
    assert ws[1].start == pytest.approx(0.5) and ws[1].end == pytest.approx(1.2) and ws[-1].end == pytest.approx(2.0)
    short = windows(3, 4, 2, 5, fps=10.0)
    assert [(w.start_frame, w.end_frame, w.end) for w in short] == [(0, 3, pytest.approx(0.3))]
    assert math.isnan(windows(20, 4, 2, 5, fps=0.0)[0].start)  # unknown frame rate -> unknown times


def test_stream_clips_match_eval_transform(gen):
    """Each streamed clip equals the evaluation pipeline (read_frames + eval_transform) on the same frames."""
    s = ClipStream(gen["v50"], 4, 2, 32, 32, hop=6, cover_end=True)
    got = list(s)
    assert [w.start_frame for w, _ in got] == [0, 6, 12, 18, 24, 30, 36, 42, 43]
    assert s.num_frames_decoded == 50 and s.fps == 25
    for w, clip in got[:3] + got[-1:]:
        idx = w.start_frame + np.arange(4) * 2
        frames, _ = read_frames(gen["v50"], idx, backend="pyav")
        ref = eval_transform(frames, np.arange(4)[None], 32, 32, 1)[0]  # uint8 (T, H, W, 3)
        assert torch.equal(ref, clip)


def test_stream_memory_bounded_on_long_video(tmp_path):
    """3000 frames: the stream never holds more than one window of frames."""
    path = write_video(tmp_path / "long.mp4", n=3000, size=(32, 32), values=lambda i: (3 * i) % 200 + 20)
    for cover_end, hop in ((False, 5), (True, 5), (False, 40)):
        s = ClipStream(path, 4, 2, 32, 32, hop=hop, cover_end=cover_end)
        n = sum(1 for _ in s)
        span = 7
        assert s.num_frames_decoded == 3000
        assert n == len(window_starts(3000, span, hop, cover_end))
        assert s.stats["max_buffered"] <= span
        if not cover_end:  # only frames some window uses are converted
            assert s.stats["converted"] <= min(3000, n * 4 + span)


def test_short_video_loops(gen, media):
    tiny = media["tiny"]  # 4 frames, pts out of order in decode order
    for path, n in ((gen["short"], 3), (tiny.path, tiny.frames)):
        s = ClipStream(path, 4, 2, 32, 32)
        (w, clip), = list(s)
        assert (w.start_frame, w.end_frame) == (0, n) and clip.shape == (4, 32, 32, 3)
        assert s.num_frames_decoded == n and not s.warning


def test_corrupt_stream_keeps_decoded_part(media):
    v = media["corrupt"]
    s = ClipStream(v.path, 4, 2, 32, 32, hop=7)
    clips = list(s)
    assert 0 < s.num_frames_decoded < v.frames and len(clips) == s.num_frames_decoded // 7
    assert f"decoding stops after {s.num_frames_decoded} of" in s.warning
    if v.level:  # generated: the clips before the damage are the right frames
        for w, clip in clips:
            want = [v.level(w.start_frame + 2 * t) for t in range(4)]
            np.testing.assert_allclose(clip.float().mean((1, 2, 3)).numpy(), want, atol=3)


@pytest.mark.parametrize("name,reason", [("missing", "not found"), ("zero", "empty"), ("text", "Invalid data found"),
                                         ("audio", "no video stream")])
def test_stream_bad_files(gen, name, reason):
    with pytest.raises(VideoError, match=reason):
        list(ClipStream(gen[name], 4, 2, 32, 32))
