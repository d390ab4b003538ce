import numpy as np
import pytest

from vidrec.engine.evaluator import merge_shards
from vidrec.engine.metrics import (compute_metrics, confusion_matrix, dedup_by_index, mean_class_accuracy,
                                   rescore_npz, save_scores_npz, topk_accuracy)
from vidrec.engine.sampler import EvalSampler, TrainSampler


def test_topk_and_mean_class_accuracy():
    scores = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1], [0.2, 0.5, 0.3]])
    labels = np.array([0, 1, 1, 1])
    assert topk_accuracy(scores, labels, 1) == pytest.approx(0.5)   # rows 0 and 3
    assert topk_accuracy(scores, labels, 2) == pytest.approx(1.0)
    assert topk_accuracy(scores, labels, 5) == pytest.approx(1.0)   # k capped at C
    cm = confusion_matrix(scores.argmax(1), labels, 3)
    assert cm.tolist() == [[1, 0, 0], [1, 1, 1], [0, 0, 0]]
    # class 0: 1/1, class 1: 1/3, class 2 absent -> mean over present classes
    assert mean_class_accuracy(cm) == pytest.approx((1 + 1 / 3) / 2)
    m = compute_metrics(scores, labels, clip_correct=np.array([2, 0, 1, 3]), clip_count=np.array([3, 3, 3, 3]),
                        num_failed=2)
    assert m["top1"] == pytest.approx(50.0)
    assert m["clip_top1"] == pytest.approx(50.0)
    assert (m["num_videos"], m["num_failed"], m["num_total"]) == (4, 2, 6)


def test_padding_duplicates_are_dropped_when_merging_ranks():
    n, world = 5, 2
    shards_idx = [list(EvalSampler(n, r, world)) for r in range(world)]
    assert sorted(sum(shards_idx, [])) == [0, 0, 1, 2, 3, 4]  # one padding duplicate
    rng = np.random.default_rng(0)
    truth = rng.random((n, 3))
    labels = np.array([0, 1, 2, 0, 1])
    shards = []
    for idx in shards_idx:
        shards.append({"ids": np.array(idx), "paths": [f"v{i}" for i in idx], "labels": labels[idx],
                       "scores": truth[idx], "nviews": np.full(len(idx), 3), "clip_ok": np.ones(len(idx), int),
                       "errors": []})
    merged = merge_shards(shards, 3)
    assert merged["video_ids"].tolist() == [0, 1, 2, 3, 4]
    assert merged["paths"] == [f"v{i}" for i in range(5)]
    np.testing.assert_array_equal(merged["scores"], truth)
    single = compute_metrics(truth, labels, clip_correct=np.ones(5), clip_count=np.full(5, 3))
    assert merged["metrics"] == single
    assert dedup_by_index(np.array([3, 1, 3, 0])).tolist() == [3, 1, 0]


def test_rescore_npz_roundtrip(tmp_path):
    rng = np.random.default_rng(1)
    scores = rng.random((6, 4))
    labels = np.array([0, 1, 2, 3, 0, 1])
    p = str(tmp_path / "scores.npz")
    save_scores_npz(p, range(6), [f"v{i}.mp4" for i in range(6)], labels, scores, [30] * 6, [10] * 6,
                    class_names=["a", "b", "c", "d"], failed=[(6, "bad.mp4", "cannot decode")])
    m = rescore_npz(p)
    ref = compute_metrics(scores.astype(np.float32), labels, clip_correct=np.full(6, 10), clip_count=np.full(6, 30),
                          num_failed=1)
    assert m == ref
    assert m["num_total"] == 7


def test_train_sampler_global_batches_do_not_depend_on_world_size():
    n, gb = 23, 4
    single = list(TrainSampler(n, gb, seed=3))
    assert len(single) == (n // gb) * gb
    two = [list(TrainSampler(n, gb, seed=3, rank=r, world_size=2)) for r in range(2)]
    for k in range(n // gb):
        union = sorted(two[0][2 * k:2 * k + 2] + two[1][2 * k:2 * k + 2])
        assert union == sorted(single[gb * k:gb * (k + 1)])  # same videos AND same per-sample seeds
    s = TrainSampler(n, gb, seed=3)
    s.set_epoch(1)
    full = list(s)
    assert full != single  # a new permutation each epoch
    s.set_start(8)
    assert list(s) == full[8:] and len(s) == len(full) - 8
