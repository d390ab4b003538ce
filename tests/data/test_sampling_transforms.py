import numpy as np
import pytest
import torch

from vidrec.data import sampling as S
from vidrec.data.sampling import clip_indices, train_clip
from vidrec.data.transforms import (crop_resized, normalize, resize_uint8, scaled_size, spatial_crop_offsets,
                                    swap_label, to_model_input, train_transform)
from vidrec.data.transforms import eval_transform as views_transform  # (the test-view transform)

MEAN, STD = [0.45] * 3, [0.225] * 3


def test_train_clip_positions():
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(2000):
        idx = train_clip(100, 16, 4, rng)
        assert (np.diff(idx) == 4).all() and idx[0] >= 0 and idx[-1] <= 99
        starts.add(int(idx[0]))
    assert starts == set(range(40))  # every start 0..100-61 is reachable
    a = train_clip(100, 16, 4, np.random.default_rng(7))
    b = train_clip(100, 16, 4, np.random.default_rng(7))
    assert (a == b).all()


def test_short_videos():
    assert clip_indices(0, 10, 4, 4).tolist() == [0, 4, 8, 2]
    assert clip_indices(0, 10, 4, 4, "repeat_last").tolist() == [0, 4, 8, 9]
    assert train_clip(1, 16, 4, np.random.default_rng(0)).tolist() == [0] * 16
    with pytest.raises(ValueError):
        clip_indices(0, 10, 4, 4, "bogus")


def test_test_clip_rule():
    assert S.eval_clip_starts(100, 16, 4, 10) == [0, 4, 9, 13, 17, 22, 26, 30, 35, 39]
    assert S.eval_clip_starts(65, 16, 4, 10) == [0, 1, 2, 3, 4]  # only 5 distinct starts exist
    assert S.eval_clip_starts(61, 16, 4, 10) == [0]  # exactly one clip long
    c = S.eval_clips(30, 16, 4, 10)
    assert c.shape == (1, 16) and c[0].tolist() == [(4 * i) % 30 for i in range(16)]
    assert S.eval_clip_starts(300, 16, 4, 1) == [119]  # one view: the centred clip


def test_normalize_values():
    x = torch.full((2, 4, 5, 3), 153, dtype=torch.uint8)
    y = normalize(x, MEAN, STD)
    assert y.shape == (3, 2, 4, 5) and y.dtype == torch.float32
    assert torch.allclose(y, torch.full_like(y, (153 / 255 - 0.45) / 0.225))


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last_3d])
def test_to_model_input_layouts_agree(fmt):
    """Batch (B, T, H, W, 3) uint8 -> (B, 3, T, H, W) float: same values in either layout."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (2, 3, 5, 7, 3), dtype=torch.uint8, generator=g)
    y = to_model_input(x, torch.device("cpu"), MEAN, STD, fmt)
    assert y.shape == (2, 3, 3, 5, 7) and y.is_contiguous(memory_format=fmt)
    ref = (x.permute(0, 4, 1, 2, 3).double() / 255 - 0.45) / 0.225
    assert torch.allclose(y.double(), ref, atol=1e-5)
    f = torch.full((1, 2, 4, 4, 3), 255.0)  # float input in [0, 255] (resize on device) is never overwritten
    assert torch.allclose(normalize(f, MEAN, STD, fmt), torch.full((1, 3, 2, 4, 4), (1 - 0.45) / 0.225))
    assert f.eq(255).all()
    with pytest.raises(ValueError, match="uint8 clips"):
        to_model_input(x.float(), torch.device("cpu"), MEAN, STD)
    with pytest.raises(ValueError, match="uint8 clips"):
        to_model_input(x[0], torch.device("cpu"), MEAN, STD)


def test_channels_last_rows_path_is_bitwise_the_broadcast_one():
    """normalize() in channels_last_3d multiplies whole W x 3 rows: per-channel factors in the right
    order, the same float32 numbers as the plain broadcast in the default layout."""
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (2, 3, 5, 7, 3), dtype=torch.uint8, generator=g)
    mean, std = (0.1, 0.5, 0.9), (0.2, 0.3, 0.4)
    y = normalize(x, mean, std, torch.channels_last_3d)
    assert y.is_contiguous(memory_format=torch.channels_last_3d)
    assert torch.equal(y, normalize(x, mean, std))
    ref = (x.permute(0, 4, 1, 2, 3).double() / 255 - torch.tensor(mean).double().view(3, 1, 1, 1)) \
        / torch.tensor(std).double().view(3, 1, 1, 1)
    assert torch.allclose(y.double(), ref, atol=1e-5)


def smooth(t=2, h=48, w=64):
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    img = torch.stack([xx * 3, yy * 4, (xx + yy) * 2], -1).clamp(0, 255).to(torch.uint8)
    return img.expand(t, h, w, 3).contiguous()


def test_crop_then_resize_equals_resize_then_crop():
    fr = smooth()
    for short, (y, x), size in [(96, (10, 20), 80), (40, (3, 7), 32), (64, (0, 0), 64)]:
        full = resize_uint8(fr, scaled_size(48, 64, short))
        got = crop_resized(fr, short, y, x, size)
        assert got.dtype == torch.uint8 and got.shape == (2, size, size, 3)
        assert (got.float() - full[:, y:y + size, x:x + size].float()).abs().mean() < 2.5


def test_train_transform_shape_and_flip():
    fr = smooth(t=4, h=33, w=47)  # odd sizes
    n_flip = 0
    for seed in range(12):
        a, fa = train_transform(fr, np.random.default_rng(seed), [64, 80], 56, True)
        b, fb = train_transform(fr, np.random.default_rng(seed), [64, 80], 56, False)
        assert a.shape == (4, 56, 56, 3) and a.dtype == torch.uint8 and a.is_contiguous() and not fb
        assert torch.equal(a, b.flip(2) if fa else b)
        n_flip += fa
    assert 0 < n_flip < 12
    with pytest.raises(ValueError, match="TRAIN_CROP_SIZE"):
        train_transform(fr, np.random.default_rng(0), [48, 64], 56, False)


def test_three_crops_along_long_side():
    assert spatial_crop_offsets(256, 340, 256, 3) == [(0, 0), (0, 42), (0, 84)]
    assert spatial_crop_offsets(340, 256, 256, 3) == [(0, 0), (42, 0), (84, 0)]
    assert spatial_crop_offsets(256, 340, 224, 1) == [(16, 58)]
    fr = smooth(t=3)  # red grows with x
    clips = np.array([[0, 1], [1, 2]])
    v = views_transform(fr, clips, 32, 32, 3)
    assert v.shape == (6, 2, 32, 32, 3) and v.dtype == torch.uint8
    red = v[:3, ..., 0].float().mean((1, 2, 3))
    assert red[0] < red[1] < red[2]  # left, centre, right
    one = views_transform(fr, clips, 32, 32, 1)
    assert torch.equal(one[0], v[1])  # single view = centre crop


def test_swap_label():
    pairs = [[86, 87], [93, 94]]
    assert [swap_label(x, pairs) for x in (86, 87, 93, 94, 5)] == [87, 86, 94, 93, 5]
