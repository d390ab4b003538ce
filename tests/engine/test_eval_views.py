"""The evaluator cuts the test views on the model's device from each video's decoded frames:
its per-video scores must be those of the explicit views (eval_transform), bit for bit."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidrec.data import build_dataset
from vidrec.data.synthetic import render_video, write_video
from vidrec.data.transforms import to_model_input
from vidrec.engine.distributed import DistContext
from vidrec.engine.evaluator import evaluate
from vidrec.models import build_model

from .conftest import tiny_cfg

# (height, width, frames) -> test views with 4x2 clips, 10 x 3 views: 10, 4 and 1 clips (short videos).
VIDEOS = {"wide.mp4": (40, 56, 20), "tall.mp4": (56, 40, 10), "broken.mp4": None, "tiny.mp4": (40, 40, 5),
          "long.mp4": (48, 64, 16)}


@pytest.fixture(scope="module")
def views_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("views")
    rng = np.random.default_rng(3)
    for k, (name, shape) in enumerate(VIDEOS.items()):
        if shape is None:
            (root / name).write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
        else:
            write_video(root / name, render_video(k % 4, rng, shape[:2], shape[2]))
    (root / "test.txt").write_text("".join(f"{name} {k % 4}\n" for k, name in enumerate(VIDEOS)))
    return root


@pytest.mark.parametrize("layout", ["channels_last", "contiguous"])
def test_scores_equal_those_of_the_explicit_views(views_root, tmp_path, layout):
    """Batches of 3 videos, 7 views per forward (chunks span videos), a failed video inside a batch,
    crops along both sides, videos with fewer than 10 clips: the scores are today's, exactly."""
    cfg = tiny_cfg(str(views_root), str(tmp_path), DATA__TEST_LIST=str(views_root / "test.txt"),
                   DATA__TEST_SHORT_SIDE=36, TEST__NUM_ENSEMBLE_VIEWS=10, TEST__NUM_SPATIAL_CROPS=3,
                   TEST__BATCH_SIZE=3, TEST__CLIPS_PER_FORWARD=7, MEMORY_FORMAT=layout)
    fmt = torch.channels_last_3d if layout == "channels_last" else torch.contiguous_format
    torch.manual_seed(0)
    model = build_model(cfg).to(memory_format=fmt).eval()
    ds = build_dataset(cfg, "test")
    res = evaluate(model, ds, cfg, DistContext(), show_progress=False)

    # The evaluator as it was: each batch's explicit uint8 views concatenated, to_model_input per chunk.
    cpu, ref, names = torch.device("cpu"), {}, list(VIDEOS)
    with torch.no_grad():
        for start in range(0, len(ds), 3):
            ids = [i for i in range(start, min(start + 3, len(ds))) if VIDEOS[names[i]]]
            views = [ds.load_views(i) for i in ids]
            chunks = torch.cat(views).split(7)
            probs = torch.cat([F.softmax(model(to_model_input(c, cpu, cfg.DATA.MEAN, cfg.DATA.STD, fmt)).float(), 1)
                               .double() for c in chunks])
            vid = torch.repeat_interleave(torch.arange(len(ids)), torch.tensor([len(v) for v in views]))
            sums = torch.zeros(len(ids), probs.shape[1], dtype=torch.float64).index_add_(0, vid, probs)
            ref.update({i: (sums[k] / len(views[k])).numpy() for k, i in enumerate(ids)})
    assert res["video_ids"].tolist() == [0, 1, 3, 4] and res["num_views"].tolist() == [30, 12, 3, 30]
    assert all(np.array_equal(s, ref[i]) for i, s in zip(res["video_ids"].tolist(), res["scores"]))
    assert [(e[0], e[1]) for e in res["errors"]] == [(2, str(views_root / "broken.mp4"))]
    assert res["metrics"]["num_failed"] == 1 and res["metrics"]["num_videos"] == 4
    assert len(np.unique(res["scores"].round(6), axis=0)) == 4  # the model tells the videos apart
