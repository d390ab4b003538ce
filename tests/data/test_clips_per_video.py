"""DATA.TRAIN_CLIPS_PER_VIDEO: k augmented clips from one decode; k=1 is the one-clip item, bitwise."""
import logging

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vidrec.data import build_dataset, collate_train, datasets, read_frames
from vidrec.data.sampling import train_clip
from vidrec.data.transforms import crop_resized, scaled_size, swap_label, to_model_input
from tests.data.conftest import use_synth


def reference(ds, i, seed, k):
    """Video ``i``'s k clips as the one-clip code makes them, each decoded on its own: a fresh
    default_rng(seed) draws every clip's start, then each clip's scale, crop and flip."""
    rng, starts = np.random.default_rng(seed), []

    def plan(n):
        starts.extend(train_clip(n, ds.num_frames, ds.rate, rng, ds.short) for _ in range(k))
        return starts[0]

    read_frames(ds.paths[i], plan, backend=ds.decoders)
    out = []
    for ids in starts:
        frames = read_frames(ds.paths[i], ids, backend=ds.decoders)[0]
        s = int(rng.integers(ds.jitter[0], ds.jitter[-1] + 1))
        rh, rw = scaled_size(frames.shape[1], frames.shape[2], s)
        y, x = int(rng.integers(0, rh - ds.crop + 1)), int(rng.integers(0, rw - ds.crop + 1))
        flipped = bool(ds.flip and rng.random() < 0.5)
        clip = crop_resized(frames, s, y, x, ds.crop)
        out.append((clip.flip(2) if flipped else clip,
                    swap_label(ds.labels[i], ds.swap_pairs) if flipped else ds.labels[i]))
    return out


@pytest.fixture
def cfg(small_cfg, synth):
    cfg = use_synth(small_cfg, synth)
    cfg.DATA.FLIP_SWAP_PAIRS = [[0, 1]]  # a flip changes the label of classes 0 and 1
    return cfg


KEYS = [(i, 40 + i) for i in range(0, 12, 2)]


def test_one_clip_per_video_is_the_one_clip_item(cfg):
    assert cfg.DATA.TRAIN_CLIPS_PER_VIDEO == 1
    ds = build_dataset(cfg, "train")
    items = [ds[k] for k in KEYS]
    for (i, seed), (clip, label, index, n_failed) in zip(KEYS, items):
        [(want, want_label)] = reference(ds, i, seed, 1)
        assert torch.equal(clip, want) and (label, index, n_failed) == (want_label, i, 0)
    clips, labels, indices, n_failed = collate_train(items)
    assert clips.shape == (6, 8, 56, 56, 3)
    assert labels.tolist() == [it[1] for it in items] and indices.tolist() == [i for i, _ in KEYS]
    assert n_failed.tolist() == [0] * 6


def test_two_clips_per_video_from_one_decode(cfg, monkeypatch):
    cfg.DATA.TRAIN_CLIPS_PER_VIDEO = 2
    ds = build_dataset(cfg, "train")
    calls = []
    real = datasets.read_frames
    monkeypatch.setattr(datasets, "read_frames", lambda p, idx, **kw: calls.append(p) or real(p, idx, **kw))
    items = [ds[k] for k in KEYS]
    assert len(calls) == len(KEYS)  # one decode per video
    flips_differ = 0
    for (i, seed), (clips, labels, index, n_failed) in zip(KEYS, items):
        want = reference(ds, i, seed, 2)
        assert len(clips) == 2 and not torch.equal(clips[0], clips[1]) and (index, n_failed) == (i, 0)
        assert all(torch.equal(c, w) for c, (w, _) in zip(clips, want)) and labels == [y for _, y in want]
        flips_differ += labels[0] != labels[1]
    assert flips_differ  # some video's clips got different labels: one flipped, one not
    clips, labels, indices, n_failed = collate_train(items)
    assert clips.shape == (12, 8, 56, 56, 3) and torch.equal(clips[2], items[1][0][0])
    assert labels.tolist() == [y for it in items for y in it[1]]
    assert indices.tolist() == [i for i, _ in KEYS for _ in range(2)] and n_failed.tolist() == [0] * 6


def test_two_clips_sharing_one_start(cfg, monkeypatch):
    """DATA.TRAIN_CLIPS_SHARE_FRAMES: one start, one clip's frames decoded, two crops and flips of them."""
    cfg.DATA.TRAIN_CLIPS_PER_VIDEO, cfg.DATA.TRAIN_CLIPS_SHARE_FRAMES = 2, True
    ds = build_dataset(cfg, "train")
    decoded = []
    real = datasets.read_frames
    monkeypatch.setattr(datasets, "read_frames",
                        lambda p, idx, **kw: (lambda r: decoded.append(len(r[0])) or r)(real(p, idx, **kw)))
    for i, seed in KEYS:
        clips, labels, index, _ = ds[(i, seed)]
        rng = np.random.default_rng(seed)  # independent replay: one start, then each clip's scale, crop, flip
        frames = real(ds.paths[i], lambda n: train_clip(n, ds.num_frames, ds.rate, rng, ds.short),
                      backend=ds.decoders)[0]
        for clip, label in zip(clips, labels):
            s = int(rng.integers(ds.jitter[0], ds.jitter[-1] + 1))
            rh, rw = scaled_size(frames.shape[1], frames.shape[2], s)
            y, x = int(rng.integers(0, rh - ds.crop + 1)), int(rng.integers(0, rw - ds.crop + 1))
            flipped = bool(ds.flip and rng.random() < 0.5)
            want = crop_resized(frames, s, y, x, ds.crop)
            assert torch.equal(clip, want.flip(2) if flipped else want)
            assert label == (swap_label(ds.labels[i], ds.swap_pairs) if flipped else ds.labels[i])
        assert not torch.equal(clips[0], clips[1])
    assert decoded == [ds.num_frames] * len(KEYS)  # one clip's frames per video


def test_two_clips_resized_on_device_and_through_workers(cfg):
    cfg.DATA.TRAIN_CLIPS_PER_VIDEO = 2
    in_loader = build_dataset(cfg, "train")
    cfg.DATA.RESIZE_ON_DEVICE = True
    deferred = build_dataset(cfg, "train")
    a = collate_train([in_loader[k] for k in KEYS])
    b = collate_train([deferred[k] for k in KEYS])
    assert len(b[0]["regions"]) == 12 and b[0]["plans"].shape == (12, 6)
    assert all(torch.equal(x, y) for x, y in zip(a[1:], b[1:]))
    cpu, mean, std = torch.device("cpu"), cfg.DATA.MEAN, cfg.DATA.STD
    x, y = to_model_input(a[0], cpu, mean, std), to_model_input(b[0], cpu, mean, std)
    assert x.shape == y.shape == (12, 3, 8, 56, 56) and (x - y).abs().max() <= 1.01 / 255 / std[0]
    dl = DataLoader(deferred, batch_size=3, sampler=KEYS, num_workers=2, collate_fn=collate_train)
    batches = list(dl)
    assert [len(bt[1]) for bt in batches] == [6, 6] and [len(bt[3]) for bt in batches] == [3, 3]
    assert torch.equal(torch.cat([to_model_input(bt[0], cpu, mean, std) for bt in batches]), y)


def test_bad_video_replaced_with_two_clips(cfg, vids, caplog):
    cfg.DATA.TRAIN_CLIPS_PER_VIDEO = 2
    ds = build_dataset(cfg, "train")
    ds.paths[0] = vids["text"]
    with caplog.at_level(logging.WARNING, logger="vidrec.data"):
        item = ds[(0, 5)]
    clips, labels, index, n_failed = item
    assert index != 0 and n_failed >= 1 and len(clips) == 2
    assert all(y in (ds.labels[index], swap_label(ds.labels[index], ds.swap_pairs)) for y in labels)
    assert vids["text"] in caplog.text
    batch = collate_train([item, ds[(3, 6)]])
    assert batch[2].tolist() == [index, index, 3, 3] and batch[3].tolist() == [n_failed, 0]  # failures per video
