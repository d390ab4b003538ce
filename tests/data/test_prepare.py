"""``vidrec prepare``: copies at the right size, rate, key frames and orientation; the layout kept so
a list works with the new root; resumable, verified, atomic; bad inputs reported, the others done."""
import json
import os
import shutil
import subprocess
import sys

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.videos import REPO, write_video
from vidrec.cli import main as vidrec
from vidrec.data import prepare
from vidrec.data.decoders import index_video, probe, read_frames
from vidrec.data.prepare import Settings, prepare_one, prepare_videos
from vidrec.data.video_check import collect_inputs

SMALL = Settings(short_side=32, keyint=8, preset="ultrafast")


def key_frames(path) -> list:
    """Presentation-order ids of the key frames, from the packets."""
    with av.open(str(path)) as c:
        packets = [p for p in c.demux(c.streams.video[0]) if p.size]
    rank = {p.pts: i for i, p in enumerate(sorted(packets, key=lambda p: p.pts))}
    return sorted(rank[p.pts] for p in packets if p.is_keyframe)


def stored_rotation(path) -> float:
    with av.open(str(path)) as c:
        return next(c.decode(video=0)).rotation


def temp_files(folder) -> list:
    return [os.path.join(dp, n) for dp, _, names in os.walk(folder) for n in names if n.endswith(".tmp")]


def test_size_frames_and_times_kept(vids, tmp_path):
    row = prepare_one(vids["h264"], str(tmp_path / "a.mp4"), SMALL)
    src, out = probe(vids["h264"]), probe(tmp_path / "a.mp4")
    assert row["status"] == "done" and row["output_size"] == "42x32" and row["output_frames"] == 40
    assert (out["height"], out["width"], out["num_frames"]) == (32, 42, 40)
    np.testing.assert_allclose(index_video(tmp_path / "a.mp4").times, index_video(vids["h264"]).times, atol=1e-4)
    assert out["fps"] == pytest.approx(src["fps"])
    # Never upscaled: a short side above the source's keeps the source's size.
    prepare_one(vids["h264"], str(tmp_path / "b.mp4"), Settings(short_side=320))
    assert (probe(tmp_path / "b.mp4")["height"], probe(tmp_path / "b.mp4")["width"]) == (48, 64)


@pytest.mark.parametrize("kind", ["rot90", "rot270", "rot180"])
def test_rotated_sources_become_upright_copies_read_the_same(vids, tmp_path, kind):
    out = tmp_path / "r.mp4"
    assert prepare_one(vids[kind], str(out), Settings(short_side=320))["status"] == "done"
    a, _ = read_frames(vids[kind], range(12), backend="pyav")
    b, _ = read_frames(out, range(12), backend="pyav")
    assert a.shape == b.shape  # displayed size kept (64x32 portrait for 90/270)
    assert (a.float() - b.float()).abs().mean() < 3  # the marker block in the same corner
    assert stored_rotation(out) == 0 and stored_rotation(vids[kind]) != 0


def test_frames_close_to_an_independent_resize_of_the_source(tmp_path):
    """The copy against PyAV's decode of the source resized by torch (antialiased bilinear)."""
    yy, xx = np.mgrid[0:96, 0:128].astype(np.float32)

    def textured(i):
        img = 128 + 60 * np.sin((xx + 3 * i) / 9.0)[..., None] * np.cos(yy[..., None] / 13.0 + np.arange(3))
        return img.clip(0, 255).astype(np.uint8)

    src = write_video(tmp_path / "tex.mp4", n=20, size=(96, 128), values=textured, options={"crf": "12"})
    prepare_one(src, str(tmp_path / "copy.mp4"), Settings(short_side=48, crf=12, preset="ultrafast"))
    with av.open(src) as c:
        ref = torch.from_numpy(np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]))
    ref = F.interpolate(ref.permute(0, 3, 1, 2).float(), size=(48, 64), mode="bilinear", antialias=True)
    got, _ = read_frames(tmp_path / "copy.mp4", range(20))
    diff = (got.permute(0, 3, 1, 2).float() - ref).abs().flatten(1).mean(1)
    assert got.shape == (20, 48, 64, 3) and diff.max() < 4, diff


def test_fps_cap_drops_frames_by_presentation_time(vids, tmp_path):
    src_times = index_video(vids["long"]).times  # 120 frames at 25 fps, grey level 8 + 2 i
    prepare_one(vids["long"], str(tmp_path / "c.mp4"), Settings(short_side=32, max_fps=10, preset="ultrafast"))
    index = index_video(tmp_path / "c.mp4")
    assert index.num_frames == 48 and index.fps == pytest.approx(10, abs=0.1)
    assert np.unique(np.floor(index.times * 10 + 1e-6)).size == 48  # at most one frame per 0.1 s
    src_ids = np.searchsorted(src_times, index.times - 1e-6)
    np.testing.assert_allclose(index.times, src_times[src_ids], atol=1e-4)  # each kept frame at its own time
    frames, _ = read_frames(tmp_path / "c.mp4", range(48))
    assert np.abs(frames.float().mean((1, 2, 3)).numpy() - (8 + 2 * src_ids)).max() < 2.5  # and the right one
    prepare_one(vids["long"], str(tmp_path / "d.mp4"), Settings(short_side=32, max_fps=30, preset="ultrafast"))
    assert index_video(tmp_path / "d.mp4").num_frames == 120  # a cap above the source rate keeps every frame


def test_keyframe_interval_is_honoured_and_source_key_frames_do_not_leak(vids, tmp_path):
    for keyint in (8, 50):
        out = tmp_path / f"k{keyint}.mp4"
        prepare_one(vids["long"], str(out), Settings(short_side=32, keyint=keyint, preset="ultrafast"))
        assert key_frames(out) == list(range(0, 120, keyint))
    assert key_frames(vids["long"]) != list(range(0, 120, 50))


def test_mpeg4_where_ffmpeg_lacks_libx264(vids, tmp_path, monkeypatch):
    monkeypatch.setattr(prepare, "codec_name", lambda: "mpeg4")
    out = tmp_path / "m.mp4"
    assert prepare_one(vids["long"], str(out), Settings(short_side=32, keyint=30))["status"] == "done"
    assert probe(out)["codec"] == "mpeg4" and key_frames(out) == [0, 30, 60, 90]


@pytest.fixture
def tree(vids, tmp_path):
    """A data root with sub-folders and a ``path,label`` list relative to it."""
    root = tmp_path / "root"
    for rel, kind in [("a/x.mp4", "h264"), ("b/c/y.webm", "vp9"), ("b/r.mp4", "rot90")]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(vids[kind], root / rel)
    (tmp_path / "train.csv").write_text("path,label\na/x.mp4,0\nb/c/y.webm,1\nb/r.mp4,1\n")
    return root, tmp_path / "train.csv"


def test_layout_kept_so_the_list_trains_from_the_new_root(tree, tmp_path, small_cfg):
    from vidrec.data.datasets import build_dataset

    root, lst = tree
    out = tmp_path / "prepared"
    res = prepare_videos(collect_inputs([str(lst)], str(root)), str(out), SMALL, workers=2, progress=False)
    assert res["totals"]["done"] == 3 and (out / "b" / "c" / "y.webm").is_file()
    assert probe(out / "b" / "c" / "y.webm")["codec"] == "h264"  # MP4 content, the list's name kept
    small_cfg.DATA.PATH_TO_DATA_DIR, small_cfg.DATA.TRAIN_LIST = str(out), str(lst)
    ds = build_dataset(small_cfg, "train")
    clip, label, index, n_failed = ds[(1, 0)]
    assert ds.paths[1] == str(out / "b" / "c" / "y.webm") and n_failed == 0 and clip.shape[0] == 8
    # The folder, or a sub-folder of the root, gives the same relative paths: nothing to redo.
    again = prepare_videos(collect_inputs([str(root)]), str(out), SMALL, progress=False)
    assert [r["status"] for r in again["videos"]] == ["skipped"] * 3
    assert sorted(rel for _, rel in collect_inputs([str(root / "b")], str(root))) == ["b/c/y.webm", "b/r.mp4"]


def test_resumable_skips_up_to_date_copies_and_redoes_changed_ones(tree, tmp_path):
    root, lst = tree
    out = tmp_path / "prepared"
    items = collect_inputs([str(lst)], str(root))
    prepare_videos(items, str(out), SMALL, workers=1, progress=False)
    mtimes = {p: os.stat(p).st_mtime_ns for p in (out / "a" / "x.mp4", out / "b" / "r.mp4")}
    res = prepare_videos(items, str(out), SMALL, workers=1, progress=False)
    assert [r["status"] for r in res["videos"]] == ["skipped"] * 3
    assert res["videos"][0]["output_frames"] == 40 and res["videos"][0]["output_size"] == "42x32"
    assert all(os.stat(p).st_mtime_ns == t for p, t in mtimes.items())
    os.utime(root / "a" / "x.mp4")  # a changed source
    res = prepare_videos(items, str(out), SMALL, workers=1, progress=False)
    assert [r["status"] for r in res["videos"]] == ["done", "skipped", "skipped"]
    res = prepare_videos(items, str(out), Settings(short_side=32, keyint=4, preset="ultrafast"), progress=False)
    assert [r["status"] for r in res["videos"]] == ["done"] * 3  # changed settings
    assert key_frames(out / "a" / "x.mp4") == list(range(0, 40, 4))


def test_a_failed_encode_leaves_the_old_copy_and_no_temp_file(vids, tmp_path, monkeypatch):
    out = tmp_path / "o" / "v.mp4"
    prepare_one(vids["h264"], str(out), SMALL)
    before = out.read_bytes()
    write = prepare._Encoder.write

    def failing(self, frame, t):
        if self.frames == 5:
            raise OSError("No space left on device")
        write(self, frame, t)

    monkeypatch.setattr(prepare._Encoder, "write", failing)
    row = prepare_one(vids["h264"], str(out), Settings(short_side=32, keyint=4))
    assert row["status"] == "failed" and "No space left on device" in row["reason"]
    assert out.read_bytes() == before and not temp_files(tmp_path / "o")
    row = prepare_one(vids["h264"], str(tmp_path / "o" / "new.mp4"), SMALL)
    assert row["status"] == "failed" and not (tmp_path / "o" / "new.mp4").exists()


def test_a_copy_that_does_not_verify_is_not_kept(vids, tmp_path, monkeypatch):
    write = prepare._Encoder.write

    def losing(self, frame, t):  # counts a frame it never writes
        if self.frames == 7:
            self.frames += 1
            return
        write(self, frame, t)

    monkeypatch.setattr(prepare._Encoder, "write", losing)
    row = prepare_one(vids["h264"], str(tmp_path / "v.mp4"), SMALL)
    assert row["status"] == "failed" and "does not verify: it decodes 39 frames" in row["reason"]
    assert os.listdir(tmp_path) == []


def test_a_video_past_its_time_limit_fails_alone_and_leaves_nothing(vids, tmp_path, monkeypatch, capsys):
    """A source that decodes or encodes forever (here: an encoder stuck in its 6th frame) fails as a timeout
    within the limit; its old copy and the other videos are unharmed."""
    import time

    out = tmp_path / "o"
    prepare_one(vids["h264"], str(out / "v.mp4"), SMALL)
    before = (out / "v.mp4").read_bytes()
    write = prepare._Encoder.write

    stuck_once = []

    def stuck(self, frame, t):
        if self.frames == 5 and not stuck_once:  # the first video only
            stuck_once.append(1)
            time.sleep(30)
        write(self, frame, t)

    monkeypatch.setattr(prepare._Encoder, "write", stuck)
    t0 = time.perf_counter()
    items = [(vids["h264"], "v.mp4"), (vids["mkv_audio"], "w.mkv")]
    res = prepare_videos(items, str(out), Settings(short_side=32, keyint=4), workers=1, progress=False, timeout=1.0)
    assert time.perf_counter() - t0 < 20
    hung, other = res["videos"]
    assert hung["status"] == "failed" and hung["reason"].startswith("timeout: not done after 1 s")
    assert other["status"] == "done" and (out / "w.mkv").is_file()
    assert (out / "v.mp4").read_bytes() == before and not temp_files(out)
    # the default grows with the video: 120 s + 10 s per second of it
    assert prepare.time_allowed(0.0) == 120 and prepare.time_allowed(60.0) == 720 and prepare.time_allowed(5, 0) == 0
    assert vidrec(["prepare", vids["h264"], "--out", str(out), "--timeout", "-1"]) == 2
    assert "--timeout must be >= 0" in capsys.readouterr().err


def test_one_decoder_thread_per_worker_process(vids, tmp_path, monkeypatch):
    """With many worker processes each decoder gets one thread (not cores x cores); alone, FFmpeg's choice."""
    from vidrec.data import video_check
    from vidrec.data.backends import pyav_backend

    seen, real = [], pyav_backend.decoded_frames
    monkeypatch.setattr(pyav_backend, "decoded_frames",
                        lambda *a, **k: seen.append(k.get("thread_count")) or real(*a, **k))
    prepare_one(vids["h264"], str(tmp_path / "a.mp4"), SMALL, threads=1)  # what a worker of many gets
    assert seen == [1, 1]  # the source, and the copy's verification
    seen.clear()
    prepare_videos([(vids["h264"], "b.mp4")], str(tmp_path), SMALL, workers=1, progress=False)
    assert seen == [0, 0]
    seen.clear()
    video_check.check_one(vids["h264"], threads=1)
    assert seen[0] == 1


def test_a_killed_run_leaves_no_copy_and_the_next_run_cleans_up(vids, tmp_path):
    out = tmp_path / "o"
    code = ("import os, signal\nfrom vidrec.data import prepare\nwrite = prepare._Encoder.write\n"
            "def dying(self, frame, t):\n    if self.frames == 5:\n        os.kill(os.getpid(), signal.SIGKILL)\n"
            "    write(self, frame, t)\nprepare._Encoder.write = dying\n"
            f"prepare.prepare_one({vids['h264']!r}, {str(out / 'v.mp4')!r})\n")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == -9
    assert not (out / "v.mp4").exists() and len(temp_files(out)) == 1
    res = prepare_videos([(vids["h264"], "v.mp4")], str(out), SMALL, progress=False)
    assert res["videos"][0]["status"] == "done" and not temp_files(out)


def test_bad_inputs_reported_one_line_each_the_good_ones_done(vids, tmp_path, capsys):
    bad = ["missing", "zero", "text", "truncated", "audio"]
    lst = tmp_path / "list.txt"
    lst.write_text("".join(f"{vids[k]} 0\n" for k in ["h264", *bad, "mkv_audio"]))
    out = tmp_path / "out"
    rc = vidrec(["prepare", str(lst), "--out", str(out), "--short-side", "32", "--preset", "ultrafast",
                 "--allow-outside-root"])
    captured = capsys.readouterr()
    failed = [ln for ln in captured.err.splitlines() if ln.startswith("FAILED ")]
    assert rc == 1 and len(failed) == len(bad)
    assert {ln.split(":")[0][len("FAILED "):] for ln in failed} == {vids[k] for k in bad}
    assert all(len(ln.split(": ", 1)[1]) > 5 for ln in failed)
    assert "prepared 7 videos: 2 done, 0 skipped (up to date), 5 failed" in captured.out
    report = json.loads((out / "prepare_report.json").read_text())
    rows = {os.path.basename(r["source"]): r for r in report["videos"]}
    assert rows["zero.mp4"]["reason"] == "empty file (0 bytes)" and rows["missing.mp4"]["reason"] == "file not found"
    assert rows["mkv_audio.mkv"]["status"] == "done" and (out / "mkv_audio.mkv").is_file()
    t, good = report["totals"], ("h264", "mkv_audio")
    assert t["failed"] == 5 and t["source_bytes"] == sum(os.path.getsize(vids[k]) for k in good)
    assert 0 < t["saved"] < 1 and t["output_bytes"] == sum(os.path.getsize(out / os.path.basename(vids[k])) for k in good)


def test_refuses_to_overwrite_sources_and_skips_copies_inside_out(tree):
    root, _ = tree
    res = prepare_videos(collect_inputs([str(root)]), str(root), SMALL, progress=False)
    assert {r["reason"] for r in res["videos"]} == {"the output would overwrite the source (give another --out)"}
    prepare_videos(collect_inputs([str(root)]), str(root / "prep"), SMALL, progress=False)
    res = prepare_videos(collect_inputs([str(root)]), str(root / "prep"), SMALL, progress=False)
    assert [r["status"] for r in res["videos"]] == ["skipped"] * 3  # the copies under prep/ are not sources


def test_cli_prepare_and_tool_wrapper(vids, tmp_path, capsys):
    assert vidrec(["prepare", vids["h264"], "--out", str(tmp_path / "o"), "--short-side", "31"]) == 2
    assert "even" in capsys.readouterr().err
    assert vidrec(["prepare", vids["h264"], vids["tiny"], "--out", str(tmp_path / "o"), "--short-side", "32",
                   "--keyint", "4", "--max-fps", "20"]) == 0
    assert "2 done, 0 skipped" in capsys.readouterr().out
    assert index_video(tmp_path / "o" / "h264.mp4").num_frames == 32  # 25 fps -> 20: 1.6 s of frames
    res = subprocess.run([sys.executable, "tools/prepare_videos.py", "--help"], cwd=REPO, capture_output=True,
                         text=True)
    assert res.returncode == 0 and "--keyint" in res.stdout
