import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vidrec.data import ListError, build_dataset, check_failure_rate, collate_test, collate_train, datasets
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
    # 32 frames, 8x2 clips (span 15): 18 start positions -> 10 clips x 3 crops, one decode call.
    assert item["views"].shape == (30, 8, 48, 48, 3) and item["views"].dtype == torch.uint8
    assert item["error"] == "" and len(calls) == 1
    ds.paths[1] = vids["random"]
    bad = ds[1]
    assert bad["views"].shape[0] == 0 and bad["error"] and bad["path"] == vids["random"]
    b = collate_test([item, bad, ds[2]])
    assert b["clips"].shape == (60, 8, 48, 48, 3) and b["clips"].dtype == torch.uint8
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
    assert ds[0]["views"].shape[0] == 30
    assert asked == [32]  # 10 clips x 8 frames = 80 frame reads, 32 distinct frames decoded


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
    assert sum(b["clips"].shape[0] for b in tb) == 8 * 30 and tb[0]["clips"].shape[1:] == (8, 48, 48, 3)


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
    assert ds[0]["views"].shape[0] > 0
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
    assert [it["views"].shape[0] for it in items[:5]] == [30, 30, 30, 3, 3]  # 3..12-frame videos: 1 clip
    assert items[3]["views"].shape[-3:] == (48, 48, 3)
    assert all(it["error"] == "" for it in items[:5])
    # A stream that breaks (real corrupted.mp4: after 16 of 50 frames; generated: 28 of 60) is scored on the
    # frames before the break with a warning (DATA.PARTIAL_VIDEO keep), or is a failed video with "fail".
    name = Path(media["corrupt"].path).name
    assert items[5]["views"].shape[0] > 0 and items[5]["error"] == ""
    assert "decoding stops after" in items[5]["warning"] and name not in items[5]["warning"]  # reason only
    assert collate_test(items)["warnings"][0][1].endswith(name)
    cfg.DATA.PARTIAL_VIDEO = "fail"
    strict = build_dataset(cfg, "test")[5]
    assert strict["views"].shape[0] == 0 and "decoding stops after" in strict["error"] and name not in strict["error"]
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
