import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vidrec.data import check_videos, make_synthetic_dataset, read_frames
from vidrec.data import video_check
from vidrec.data.lists import read_path_label_list
from vidrec.data.synthetic import main as synth_main, render_video
from tests.videos import REPO


def test_synthetic_lists_determinism_idempotency(tmp_path, synth):
    r = make_synthetic_dataset(tmp_path / "a", 4, (3, 2, 2), num_frames=32)
    assert r["num_classes"] == 4 and Path(r["classes"]).read_text().splitlines()[2] == "growing"
    paths, labels = read_path_label_list(r["train"])
    assert len(paths) == 12 and labels == sorted(labels) and not os.path.isabs(paths[0])
    x, info = read_frames(Path(r["root"]) / paths[0], range(32))
    assert x.shape == (32, 64, 64, 3) and info["backend"] == "decord"
    y, _ = read_frames(Path(synth["root"]) / paths[0], range(32))  # same seed elsewhere: same video
    assert (x == y).all()
    mtime = os.path.getmtime(Path(r["root"]) / paths[0])
    assert make_synthetic_dataset(tmp_path / "a", 4, (3, 2, 2), num_frames=32) == r
    assert os.path.getmtime(Path(r["root"]) / paths[0]) == mtime  # reused, not rewritten
    assert not list(Path(r["root"]).rglob("*.tmp*"))


def _object_track(frames):
    """Centroid x/y and area of pixels far from the per-pixel temporal median (the static background)."""
    f = frames.astype(np.float32)
    diff = np.abs(f - np.median(f, axis=0)).sum(-1) > 60
    ys, xs = np.mgrid[0:f.shape[1], 0:f.shape[2]]
    area = diff.sum((1, 2))
    return (diff * xs).sum((1, 2)) / np.maximum(area, 1), (diff * ys).sum((1, 2)) / np.maximum(area, 1), area


def test_synthetic_classes_differ_only_in_motion():
    for seed in range(3):
        fr = {c: render_video(c, np.random.default_rng([seed, c]), (64, 64), 32) for c in range(6)}
        left, right, grow, shrink = (_object_track(fr[c]) for c in range(4))
        assert left[0][-1] < left[0][0] and right[0][-1] > right[0][0]
        up, down = _object_track(fr[4]), _object_track(fr[5])
        assert up[1][-1] < up[1][0] and down[1][-1] > down[1][0]
        assert (fr[2][0] != fr[2][-1]).any() and (fr[3][0] != fr[3][-1]).any()


def test_synthetic_cli(tmp_path):
    synth_main([str(tmp_path / "s"), "--num-classes", "2", "--per-class", "1", "1", "1", "--frames", "8"])
    assert len(read_path_label_list(tmp_path / "s" / "test.csv")[0]) == 2


def test_check_videos_report_and_quarantine(tmp_path, vids):
    paths = [vids["h264"], vids["av1"], vids["zero"], vids["text"], vids["missing"]]
    rows = check_videos(paths, workers=2, report=tmp_path / "r.json", quarantine=tmp_path / "q.txt", progress=False)
    assert [r["ok"] for r in rows] == [True, True, False, False, False]
    assert rows[0]["frames"] == 40 and rows[0]["width"] == 64 and rows[0]["backend"] == "decord"
    assert rows[1]["backend"] == "pyav" and "fallback" in rows[1]["reason"]
    assert "file not found" in rows[4]["reason"]
    assert (tmp_path / "q.txt").read_text().splitlines() == paths[2:]
    assert json.loads((tmp_path / "r.json").read_text())[0]["fps"] == 25.0
    assert video_check.summary_line(rows).startswith("checked 5 videos: 2 ok, 3 failed")


def test_check_one_time_limit(monkeypatch, vids):
    import time
    monkeypatch.setattr(video_check, "probe", lambda *a, **k: time.sleep(5))
    row = video_check.check_one(vids["h264"], timeout=0.2)
    assert not row["ok"] and row["reason"].startswith("timeout")


def test_tools_cli(tmp_path, vids, capsys):
    lst = tmp_path / "l.txt"
    lst.write_text(f"{Path(vids['h264']).name} 0\n{Path(vids['text']).name} 1\n")
    cmd = [sys.executable, str(REPO / "tools" / "check_videos.py"), str(lst), "--root", str(Path(vids["h264"]).parent),
           "--workers", "1", "--report", str(tmp_path / "r.csv"), "--quarantine", str(tmp_path / "q.txt")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 1 and "checked 2 videos: 1 ok, 1 failed" in res.stdout
    assert f"FAILED {Path(vids['h264']).parent / Path(vids['text']).name}: " in res.stderr  # named on the console
    assert (tmp_path / "q.txt").read_text().strip().endswith("text.mp4")
    assert (tmp_path / "r.csv").read_text().startswith("path,ok,status,reason,frames,fps,width,height")
    build = runpy.run_path(str(REPO / "tools" / "build_lists.py"))["main"]  # in-process: no second torch import
    with pytest.raises(SystemExit) as e:
        build(["--help"])
    assert e.value.code == 0 and "--annotations" in capsys.readouterr().out
    root = tmp_path / "ssv2"
    root.mkdir()
    (root / "5.webm").write_bytes(b"x")
    (tmp_path / "labels.json").write_text('{"Dropping something": "3"}')
    (tmp_path / "val.json").write_text('[{"id": "5", "template": "Dropping [something]"}, '
                                       '{"id": "6", "template": "Dropping [something]"}]')
    assert build(["ssv2", "--annotations", str(tmp_path / "val.json"), "--labels", str(tmp_path / "labels.json"),
                  "--root", str(root), "--out", str(tmp_path / "out.csv")]) == 1  # finished, 1 video missing
    assert "1 video, 1 of 2 missing" in capsys.readouterr().out
    assert read_path_label_list(tmp_path / "out.csv") == (["5.webm"], [3])


def test_check_videos_takes_video_files_and_names_failures(vids, tmp_path, capsys):
    """'check-videos zero.mp4' said "checked 0 videos" and exited 0: video files are inputs, as for predict."""
    from vidrec.cli import main as vidrec

    rc = vidrec(["check-videos", vids["zero"], vids["h264"], vids["zero"], "--workers", "1",
                 "--report", str(tmp_path / "r.csv"), "--quarantine", str(tmp_path / "q.txt")])
    out, err = capsys.readouterr()
    assert rc == 1 and "checked 2 videos: 1 ok, 1 failed" in out  # the duplicate is checked once
    assert [ln for ln in err.splitlines() if ln.startswith("FAILED")] == [f"FAILED {vids['zero']}: empty file (0 bytes)"]
    assert (tmp_path / "q.txt").read_text() == vids["zero"] + "\n"


def test_collect_paths_videos_folders_lists(tmp_path):
    from vidrec.data.lists import ListError

    d = tmp_path / "f"
    (d / "sub").mkdir(parents=True)
    for name in ("a.webm", "sub/b.mp4"):
        (d / name).write_bytes(b"")
    (d / "notes.txt").write_text("not a video")
    lst = tmp_path / "l.csv"
    lst.write_text("path,label\nsub/b.mp4,0\nc.mkv,1\n")
    got = video_check.collect_paths([str(d), str(tmp_path / "gone.mp4"), str(lst)], root=str(d))
    assert got == [str(d / "a.webm"), str(d / "sub" / "b.mp4"), str(tmp_path / "gone.mp4"), str(d / "c.mkv")]
    with pytest.raises(ListError, match="not found: "):
        video_check.collect_paths([str(tmp_path / "no_such_list.csv")])
    (tmp_path / "clip.bin").write_bytes(bytes(range(256)))
    with pytest.raises(ListError, match="not a text list"):
        video_check.collect_paths([str(tmp_path / "clip.bin")])


def test_timeout_inside_a_decoder_is_reported_as_a_timeout(monkeypatch, vids):
    """The alarm fires inside a decoder, whose generic ``except Exception`` turned it into a VideoError
    ("pyav: TimeLimitExceeded: "): the timeout is a BaseException, so the intended reason reaches the report."""
    import time

    from vidrec.data.decoders import VideoError

    def slow_probe(path, **kwargs):
        try:
            time.sleep(5)
        except Exception as e:  # what the decoders do with any library error
            raise VideoError(path, f"pyav: {type(e).__name__}: {e}") from None

    monkeypatch.setattr(video_check, "probe", slow_probe)
    row = video_check.check_one(vids["h264"], timeout=0.2)
    assert not row["ok"] and row["reason"] == "timeout: probing took more than 0.2 s"


def test_synthetic_default_videos_are_unchanged():
    """The harder variant's options default to the original videos, byte for byte (the demo and its
    documented results rely on them): the digest was taken before the options existed."""
    import hashlib

    h = hashlib.sha256()
    for c in range(6):
        for size in ((64, 64), (48, 48), (32, 40)):
            h.update(render_video(c, np.random.default_rng([7, 1, c, 3]), size, 16).tobytes())
    assert h.hexdigest() == "61c1b505d103bce36be86057dbf5264d93491aa843c7f33c9d2b5025ab9a37db"


def _knn_accuracy(train_x, train_y, test_x, test_y, k=9):
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-9
    a, b = (train_x - mu) / sd, (test_x - mu) / sd
    near = np.argsort(((b[:, None] - a[None]) ** 2).sum(-1), axis=1)[:, :k]
    votes = np.array([np.bincount(train_y[n], minlength=train_y.max() + 1).argmax() for n in near])
    return float((votes == test_y).mean())


def test_hard_variant_needs_time_not_one_frame():
    """12 classes (6 motions x slow/fast) with clutter and noise: the object's position and size in one frame
    say little about the class (a k-NN on them: 8%, chance 8%), while their change from the first to the
    last frame gives it away (93%). Frames are deterministic for a seed."""
    from vidrec.data.synthetic import class_names

    kw = dict(speeds=2, bright_objects=True, clutter=3, noise=8.0)
    n_cls, size, frames = len(class_names(2)), (32, 40), 16
    assert n_cls == 12 and class_names(2)[:2] == ("moving left slowly", "moving left fast")
    one, two, labels = [], [], []
    for c in range(n_cls):
        for i in range(30):
            rng = np.random.default_rng([5, c, i])
            x, y, area = _object_track(render_video(c, rng, size, frames, **kw))
            t = rng.integers(frames)
            one.append([x[t], y[t], area[t]])
            two.append([x[-1] - x[0], y[-1] - y[0], area[-1] - area[0]])
            labels.append(c)
    one, two, labels = np.array(one), np.array(two), np.array(labels)
    train, test = np.arange(len(labels)) % 3 != 0, np.arange(len(labels)) % 3 == 0
    single = _knn_accuracy(one[train], labels[train], one[test], labels[test])
    pair = _knn_accuracy(two[train], labels[train], two[test], labels[test])
    assert single < 2.5 / n_cls and pair > 0.6, (single, pair)
    v = render_video(3, np.random.default_rng([1, 2]), size, frames, distractors=2, **kw)
    assert (v == render_video(3, np.random.default_rng([1, 2]), size, frames, distractors=2, **kw)).all()
    assert (v != render_video(3, np.random.default_rng([1, 3]), size, frames, distractors=2, **kw)).any()


def test_hard_variant_dataset_records_its_options(tmp_path):
    r = make_synthetic_dataset(tmp_path / "h", 12, (1, 1, 0), size=(16, 20), num_frames=8, speeds=2, distractors=1)
    meta = json.loads((tmp_path / "h" / "synthetic.json").read_text())
    assert meta["speeds"] == 2 and meta["distractors"] == 1 and "clutter" not in meta and meta["version"] == 1
    assert Path(r["classes"]).read_text().splitlines()[11] == "moving down fast"
    assert read_path_label_list(r["train"])[1] == list(range(12))
    with pytest.raises(ValueError, match="num_classes must be in 2..6"):
        make_synthetic_dataset(tmp_path / "x", 7)
