import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vidrec.data import ListError, build_dataset, check_failure_rate, collate_test, collate_train, datasets
from vidrec.data.transforms import (ViewCutter, eval_transform, eval_union, num_union_views, to_model_input,
                                   union_views)
from tests.data.conftest import use_synth


def test_train_items_and_seed(small_cfg, synth):
    ds = build_dataset(use_synth(small_cfg, synth), "train")
    assert len(ds) == 12 and ds.num_classes == 4 and ds.labels == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert ds.class_names == ["moving left", "moving right", "growing", "shrinking"]
    assert all(Path(p).is_file() for p in ds.paths)
    clip, label, index, n_failed = ds[(4, 123)]
    assert clip.shape == (8, 56, 56, 3) and clip.dtype == torch.uint8
    assert (label, index, n_failed) == (1, 4, 0)
    again = ds[(4, 123)]
    assert torch.equal(clip, again[0])
    assert not torch.equal(clip, ds[(4, 124)][0])
    assert ds[4][0].shape == clip.shape  # int key: fresh randomness


def test_bad_video_is_replaced_and_counted(small_cfg, synth, vids, caplog):
    ds = build_dataset(use_synth(small_cfg, synth), "train")
    ds.paths[0] = vids["text"]
    with caplog.at_level(logging.WARNING, logger="vidrec.data"):
        clip, label, index, n_failed = ds[(0, 5)]
    assert index != 0 and n_failed >= 1 and label == ds.labels[index]
    assert vids["text"] in caplog.text
    ds.paths = [vids["zero"]] * len(ds)
    with pytest.raises(RuntimeError, match="4 videos in a row failed"):
        ds[(0, 1)]


def test_failure_rate():
    assert check_failure_rate(1, 99, 0.05) == pytest.approx(0.01)
    assert check_failure_rate(0, 0, 0.05) == 0.0
    with pytest.raises(RuntimeError, match="10 of 100 video loads failed"):
        check_failure_rate(10, 90, 0.05)


def test_test_items_views_and_collate(small_cfg, synth, vids, monkeypatch):
    cfg = use_synth(small_cfg, synth)
    ds = build_dataset(cfg, "val")
    calls = []
    real = datasets.read_frames
    monkeypatch.setattr(datasets, "read_frames", lambda p, idx, **kw: calls.append(p) or real(p, idx, **kw))
    item = ds[0]
    # 32 frames, 8x2 clips (span 15): 18 start positions -> 10 clips x 3 crops, one decode call; the
    # item is the union of the clips' 24 distinct frames (64x64 px resized to 48) and the plan of the views.
    u = item["union"]
    assert u["frames"].shape == (24, 48, 48, 3) and u["frames"].dtype == torch.uint8 and u["rows"].shape == (10, 8)
    assert u["offsets"].shape == (3, 2) and u["crop"] == 48 and num_union_views(u) == 30
    assert item["error"] == "" and len(calls) == 1
    assert union_views(u).shape == (30, 8, 48, 48, 3) and torch.equal(union_views(u), ds.load_views(0))
    ds.paths[1] = vids["random"]
    bad = ds[1]
    assert num_union_views(bad["union"]) == 0 and bad["error"] and bad["path"] == vids["random"]
    b = collate_test([item, bad, ds[2]])
    assert len(b["unions"]) == 3 and b["unions"][0] is u
    assert sum(x.shape[0] for x in ViewCutter("cpu", [0.5] * 3, [0.2] * 3)(b["unions"])) == 60
    assert b["video_index"].tolist() == [0] * 30 + [2] * 30
    assert b["labels"].tolist() == [0, 0, 1] and b["indices"].tolist() == [0, 1, 2]
    assert b["errors"] == [(1, vids["random"], bad["error"])]


def test_union_decoded_once(small_cfg, synth, monkeypatch):
    cfg = use_synth(small_cfg, synth)
    cfg.DATA.SAMPLING_RATE = 1
    ds = build_dataset(cfg, "test")
    asked = []
    real = datasets.read_frames

    def spy(p, idx, **kw):
        x, info = real(p, idx, **kw)
        asked.append(x.shape[0])
        return x, info

    monkeypatch.setattr(datasets, "read_frames", spy)
    u = ds[0]["union"]
    assert num_union_views(u) == 30
    assert asked == [32]  # 10 clips x 8 frames = 80 frame reads, 32 distinct frames decoded
    assert u["frames"].shape[0] == 32  # and shipped once each, not once per view


def test_label_aware_flip(small_cfg, synth):
    cfg = use_synth(small_cfg, synth)
    cfg.DATA.FLIP_SWAP_PAIRS = [[0, 1]]
    ds = build_dataset(cfg, "train")
    labels = {ds[(0, s)][1] for s in range(16)}
    assert labels == {0, 1}
    cfg.DATA.RANDOM_FLIP = False
    ds = build_dataset(cfg, "train")
    assert {ds[(0, s)][1] for s in range(8)} == {0}


def test_dataloader_two_workers(small_cfg, synth):
    cfg = use_synth(small_cfg, synth)
    ds = build_dataset(cfg, "train")
    keys = [(i, 1000 + i) for i in range(8)]
    dl = DataLoader(ds, batch_size=4, sampler=keys, num_workers=2)
    batches = list(dl)
    clips = torch.cat([b[0] for b in batches])
    assert clips.shape == (8, 8, 56, 56, 3)
    assert torch.equal(clips[3], ds[keys[3]][0])  # same sample in the main process and a worker
    assert torch.cat([b[3] for b in batches]).sum() == 0
    tl = DataLoader(build_dataset(cfg, "test"), batch_size=3, num_workers=2, collate_fn=collate_test)
    tb = list(tl)
    assert sum(len(b["video_index"]) for b in tb) == sum(num_union_views(u) for b in tb for u in b["unions"]) == 8 * 30
    assert torch.equal(tb[0]["unions"][1]["frames"], build_dataset(cfg, "test")[1]["union"]["frames"])


def test_build_errors(small_cfg, synth, tmp_path):
    cfg = use_synth(small_cfg, synth)
    cfg.DATA.TRAIN_LIST = str(tmp_path / "missing.csv")
    with pytest.raises(ListError, match="missing.csv"):
        build_dataset(cfg, "train")
    (tmp_path / "empty.csv").write_text("path,label\n")
    cfg.DATA.TRAIN_LIST = str(tmp_path / "empty.csv")
    with pytest.raises(ListError, match="no videos"):
        build_dataset(cfg, "train")
    cfg.DATA.TRAIN_LIST = synth["train"]
    cfg.MODEL.NUM_CLASSES = 3
    with pytest.raises(ListError, match=r"outside 0..2 \(MODEL.NUM_CLASSES=3\)"):
        build_dataset(cfg, "train")
    cfg.MODEL.NUM_CLASSES = 4
    (tmp_path / "escape.csv").write_text("../outside.mp4 0\n")
    cfg.DATA.TRAIN_LIST = str(tmp_path / "escape.csv")
    with pytest.raises(ListError, match="ALLOW_OUTSIDE_ROOT"):
        build_dataset(cfg, "train")
    cfg.DATA.ALLOW_OUTSIDE_ROOT = True
    assert build_dataset(cfg, "train").paths[0] == str(Path(synth["root"]).parent / "outside.mp4")
    with pytest.raises(ValueError, match="split"):
        build_dataset(cfg, "training")


def test_folder_kinetics_ssv2(small_cfg, vids, tmp_path):
    cfg = small_cfg
    for c in ("jump", "run"):
        (tmp_path / "train" / c).mkdir(parents=True)
        shutil.copy(vids["h264"], tmp_path / "train" / c / "a.mp4")
    cfg.DATA.DATASET, cfg.DATA.PATH_TO_DATA_DIR, cfg.DATA.TRAIN_LIST = "folder", str(tmp_path), "train"
    ds = build_dataset(cfg, "train")
    assert ds.class_names == ["jump", "run"] and ds.labels == [0, 1] and ds[(1, 0)][1] == 1
    # Kinetics official CSV: class ids from data_lists/kinetics400_classes.txt
    k = tmp_path / "k400"
    (k / "zumba").mkdir(parents=True)
    shutil.copy(vids["h264"], k / "zumba" / "abc_000001_000011.mp4")
    (tmp_path / "k.csv").write_text("label,youtube_id,time_start,time_end,split\nzumba,abc,1,11,val\n"
                                    "abseiling,gone,0,10,val\n")
    cfg.DATA.DATASET, cfg.DATA.PATH_TO_DATA_DIR, cfg.DATA.VAL_LIST = "kinetics", str(k), str(tmp_path / "k.csv")
    cfg.MODEL.NUM_CLASSES = 400
    ds = build_dataset(cfg, "val")
    assert len(ds) == 1 and ds.labels == [399] and len(ds.class_names) == 400
    assert num_union_views(ds[0]["union"]) > 0
    # SSv2 official JSON + labels file; VP9 webm
    s = tmp_path / "ssv2"
    s.mkdir()
    shutil.copy(vids["vp9"], s / "7.webm")
    (tmp_path / "labels.json").write_text('{"Pushing something from left to right": "93"}')
    (tmp_path / "train.json").write_text('[{"id": "7", "template": "Pushing [something] from left to right"}]')
    cfg.DATA.DATASET, cfg.DATA.PATH_TO_DATA_DIR = "ssv2", str(s)
    cfg.DATA.TRAIN_LIST, cfg.DATA.LABELS_FILE = str(tmp_path / "train.json"), str(tmp_path / "labels.json")
    cfg.MODEL.NUM_CLASSES = 174
    ds = build_dataset(cfg, "train")
    assert ds.labels == [93] and ds[(0, 3)][0].shape == (8, 56, 56, 3)


def test_test_pipeline_on_every_kind_of_video(small_cfg, media, tmp_path):
    """The test split on long, AVI+audio, MKV (no frame count), rotated, tiny and corrupt videos."""
    kinds = ["long", "avi", "mkv", "rot90", "tiny", "corrupt"]
    root = Path(media["long"].path).parent
    assert all(Path(media[k].path).parent == root for k in kinds)
    (tmp_path / "l.txt").write_text("".join(f"{Path(media[k].path).name} 0\n" for k in kinds))
    cfg = small_cfg
    cfg.DATA.PATH_TO_DATA_DIR, cfg.DATA.TEST_LIST = str(root), str(tmp_path / "l.txt")
    cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE = 8, 8
    ds = build_dataset(cfg, "test")
    items = [ds[i] for i in range(len(ds))]
    assert [num_union_views(it["union"]) for it in items[:5]] == [30, 30, 30, 3, 3]  # 3..12-frame videos: 1 clip
    assert union_views(items[3]["union"]).shape[-3:] == (48, 48, 3)
    assert all(it["error"] == "" for it in items[:5])
    # A stream that breaks (real corrupted.mp4: after 16 of 50 frames; generated: 28 of 60) is scored on the
    # frames before the break with a warning (DATA.PARTIAL_VIDEO keep), or is a failed video with "fail".
    name = Path(media["corrupt"].path).name
    assert num_union_views(items[5]["union"]) > 0 and items[5]["error"] == ""
    assert "decoding stops after" in items[5]["warning"] and name not in items[5]["warning"]  # reason only
    assert collate_test(items)["warnings"][0][1].endswith(name)
    cfg.DATA.PARTIAL_VIDEO = "fail"
    strict = build_dataset(cfg, "test")[5]
    assert num_union_views(strict["union"]) == 0
    assert "decoding stops after" in strict["error"] and name not in strict["error"]
    assert collate_test([strict])["errors"][0][1].endswith(name)


def test_resize_on_device_gives_the_same_crops(small_cfg, synth):
    """DATA.RESIZE_ON_DEVICE: workers ship the source regions, the device resizes them; same crops and labels."""
    from vidrec.data.transforms import to_model_input

    cfg = use_synth(small_cfg, synth)
    cfg.DATA.FLIP_SWAP_PAIRS = [[0, 1]]
    in_loader = build_dataset(cfg, "train")
    cfg.DATA.RESIZE_ON_DEVICE = True
    deferred = build_dataset(cfg, "train")
    keys = [(i, 70 + i) for i in range(0, 12, 2)]
    a = collate_train([in_loader[k] for k in keys])
    b = collate_train([deferred[k] for k in keys])
    assert isinstance(b[0], dict) and b[0]["plans"].shape == (6, 6) and b[0]["regions"][0].dtype == torch.uint8
    for x, y in zip(a[1:], b[1:]):  # labels (flips swap 0 <-> 1), indices, failures
        assert torch.equal(x, y)
    assert set(b[0]["plans"][:, 5].tolist()) == {0, 1}  # both flipped and unflipped crops compared
    cpu, mean, std = torch.device("cpu"), cfg.DATA.MEAN, cfg.DATA.STD
    x, y = to_model_input(a[0], cpu, mean, std), to_model_input(b[0], cpu, mean, std)
    assert x.shape == y.shape == (6, 3, 8, 56, 56)
    # Only the loader's rounding to uint8 separates them: within one grey level.
    assert (x - y).abs().max() <= 1.01 / 255 / std[0]
    # DataLoader workers + pinned-memory-style batching of the variable-size regions.
    dl = DataLoader(deferred, batch_size=3, sampler=keys, num_workers=2, collate_fn=collate_train)
    z = torch.cat([to_model_input(batch[0], cpu, mean, std) for batch in dl])
    assert torch.equal(z, y)


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last_3d], ids=["contiguous", "channels_last"])
def test_view_cutter_equals_eval_transform(fmt):
    """The evaluator's input, cut from the shipped unions on the device (ViewCutter), is eval_transform's
    views through to_model_input bit for bit: chunks across videos, both layouts, a failed video between."""
    g = torch.Generator().manual_seed(0)
    frames = lambda *shape: torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)  # noqa: E731
    videos = [(frames(20, 40, 60, 3), np.array([[0, 2, 4, 6], [5, 7, 9, 11], [13, 15, 17, 19]])),  # landscape
              (frames(9, 30, 22, 3), np.array([[0, 2, 4, 6], [1, 3, 5, 7]])),  # portrait, upscaled
              (frames(3, 24, 24, 3), np.array([[0, 1, 2, 2]]))]  # shorter than a clip
    unions = [eval_union(f, c, 28, 24, 3) for f, c in videos]
    failed = {"frames": frames(0, 24, 24, 3), "rows": torch.zeros((0, 4), dtype=torch.long),
              "offsets": torch.zeros((3, 2), dtype=torch.long), "crop": 24}
    unions.insert(1, failed)
    mean, std, cpu = [0.43, 0.45, 0.41], [0.23, 0.22, 0.26], torch.device("cpu")
    ref = to_model_input(torch.cat([eval_transform(f, c, 28, 24, 3) for f, c in videos]), cpu, mean, std, fmt)
    assert ref.shape == (18, 3, 4, 24, 24)
    for chunk, sizes in ((0, [18]), (5, [5, 5, 5, 3]), (1, [1] * 18)):
        got = [x.clone() for x in ViewCutter(cpu, mean, std, fmt, chunk)(unions)]
        assert [len(x) for x in got] == sizes and all(x.is_contiguous(memory_format=fmt) for x in got)
        assert torch.equal(torch.cat(got), ref), chunk
