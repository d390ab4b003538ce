"""ResNeXt3D, ResGroup3D(-Fix), their iResNet wirings, and SeqConv / SeqResNet3D.

Published 2D figures (1000 classes, 224x224) are the ground truth: the
Duta et al. 2020 tables for ResGroup / ResNeXt, the SeqConv paper for its
networks. Big models are built on the meta device (no memory, no init time).
"""
import pytest
import torch
import torchvision
from torch import nn

from vidrec.config import load_config
from vidrec.models import ResNet3D, SeqConv3d, SeqResNet3D, create, list_models
from vidrec.models.complexity import count_params, fvcore_flops, paper_flops
from vidrec.models.inflate import inflate_state_dict
from vidrec.models.seqconv import SeqBlock

from .helpers import randomize_bn
from .reference_resgroup2d import RefResGroup50

IMAGE = (1, 3, 1, 224, 224)
GROUPED = [f"{f}_{d}" for f in ("resgroup3d", "resgroupfix3d", "iresgroup3d", "iresgroupfix3d")
           for d in (50, 101, 152)] + [f"{f}_{d}" for f in ("resnext3d", "iresnext3d") for d in (50, 101)]
SEQ = ["seqresnet3d_b22", "seqresnet3d_b42", "seqresnext3d_24"]
ALL = GROUPED + SEQ


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These nets are many small (grouped) convs: on a shared CPU a second
    thread mostly waits; one thread runs them up to 20x faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def on_meta(name, **kw):
    with torch.device("meta"):
        return create(name, **kw)


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def test_registry_lists_every_family():
    assert set(ALL) <= set(list_models())
    assert list_models("iresgroupfix3d_*") == ["iresgroupfix3d_101", "iresgroupfix3d_152", "iresgroupfix3d_50"]


# ------------------------------------------------------------ published 2D figures
@pytest.mark.parametrize("name, millions", [
    ("resgroup3d_50", 24.89), ("resgroupfix3d_50", 23.37),      # Duta et al., Table 1
    ("resgroup3d_101", 47.81), ("resgroupfix3d_101", 43.79),    # Duta et al., Table 6
    ("resnext3d_50", 25.03), ("resnext3d_101", 44.18),          # ResNeXt 32x4d
])
def test_2d_params_match_the_papers(name, millions):
    params = count_params(on_meta(name, num_classes=1000, temporal=False))
    assert round(params / 1e6, 2) == millions
    # The improved wiring adds no parameters.
    assert count_params(on_meta("i" + name, num_classes=1000, temporal=False)) == params


@pytest.mark.parametrize("name, gflops", [
    ("resgroup3d_50", 5.43), ("resgroupfix3d_50", 4.30),
    ("iresgroup3d_50", 5.60), ("iresgroupfix3d_50", 4.47), ("resnext3d_50", 4.30),
])
def test_2d_paper_convention_gflops(name, gflops):
    model = on_meta(name, num_classes=1000, temporal=False)
    assert round(paper_flops(model, IMAGE) / 1e9, 2) == gflops


def test_resnext50_fvcore_gflops_2d():
    assert round(fvcore_flops(create("resnext3d_50", num_classes=1000, temporal=False), IMAGE) / 1e9, 2) == 4.26


@pytest.mark.parametrize("name, millions", [("seqresnet3d_b22", 11.8), ("seqresnet3d_b42", 25.6),
                                            ("seqresnext3d_24", 26.2)])
def test_seqconv_networks_land_near_the_paper(name, millions):
    """Within 0.1M of the SeqConv paper (B22 is 11.86M here, see docs/models.md)."""
    params = count_params(on_meta(name, num_classes=1000, temporal=False))
    assert abs(params / 1e6 - millions) < 0.1


# -------------------------------------------------------------------- structure
def test_resgroup_block_layout():
    m = create("resgroup3d_50", num_classes=10)
    for layer, width, groups in zip((m.layer1, m.layer2, m.layer3, m.layer4), (256, 512, 1024, 2048),
                                    (8, 16, 32, 64)):
        b = layer[0]
        assert (b.conv1.out_channels, b.conv2.out_channels, b.conv3.out_channels) == (width, width, width // 2)
        assert b.conv2.groups == groups and b.conv2.kernel_size == (3, 3, 3)
    assert m.num_features == 1024 and m.fc.in_features == 1024
    assert {b.conv2.groups for b in create("resgroupfix3d_50").modules() if hasattr(b, "conv2")} == {64}


def test_iresgroup_uses_the_iresnet_wiring():
    m = on_meta("iresgroup3d_50")
    assert isinstance(m.maxpool, nn.Identity) and m.layer1[0].conv2.stride == (1, 2, 2)
    assert isinstance(m.layer3[0].downsample[0], nn.MaxPool3d) and m.layer3[0].downsample[0].kernel_size == (3, 3, 3)
    assert [b.position for b in m.layer2] == ["start", "middle", "middle", "end"]


def test_resnext_block_layout():
    m = on_meta("resnext3d_50")
    assert [m.layer1[0].conv2.out_channels, m.layer4[0].conv2.out_channels] == [128, 1024]
    assert m.layer2[0].conv2.groups == 32 and m.layer4[0].conv3.out_channels == 2048


@pytest.mark.parametrize("name, features", [("resnext3d_101", 2048), ("iresgroup3d_152", 1024),
                                            ("seqresnet3d_b22", 1024), ("seqresnext3d_24", 2048)])
def test_embedding_width(name, features):
    m = on_meta(name, num_classes=400)
    assert m.num_features == features and m.fc.in_features == features and m.dropout.p == 0.5


# ----------------------------------------------------------- every family trains
@pytest.mark.parametrize("name", ALL)
def test_every_variant_trains_on_a_tiny_clip(name):
    torch.manual_seed(0)
    model = create(name, num_classes=5, width_mult=1 / 16)
    logits = model(torch.randn(2, 3, 4, 32, 32))
    assert logits.shape == (2, 5)
    logits.logsumexp(1).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert model.conv1.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["iresgroup3d_50", "resnext3d_50", "seqresnet3d_b22", "seqresnext3d_24"])
def test_feature_api(name):
    torch.manual_seed(0)
    model = create(name, num_classes=7, width_mult=1 / 16).eval()
    randomize_bn(model)
    x = torch.randn(2, 3, 16, 64, 64)
    with torch.no_grad():
        stages = model.forward_stages(x)
        feats = model.forward_features(x)
        emb = model.forward_head(feats, pre_logits=True)
        torch.testing.assert_close(model.forward_head(feats), model(x))
    # 16x64x64 -> the paper's stage layout: /4, /8, /16 (time /2), /32 (time /4).
    assert [tuple(s.shape[2:]) for s in stages] == [(16, 16, 16), (16, 8, 8), (8, 4, 4), (4, 2, 2)]
    torch.testing.assert_close(stages[-1], feats)
    assert emb.shape == (2, model.num_features)
    torch.testing.assert_close(emb, feats.mean((2, 3, 4)))
    model.reset_classifier(3)
    assert model(x).shape == (2, 3)
    model.reset_classifier(0)
    with torch.no_grad():
        torch.testing.assert_close(model(x), emb)
    with pytest.raises(ValueError, match=r"expected a clip batch of shape \(N, 3, T, H, W\), got \(2, 3, 64, 64\)"):
        model(torch.randn(2, 3, 64, 64))


def test_2d_mode_kernels():
    for name in ("iresgroupfix3d_50", "seqresnext3d_24"):
        m = on_meta(name, temporal=False)
        assert all(c.kernel_size[0] == 1 and c.stride[0] == 1 for c in m.modules() if isinstance(c, nn.Conv3d))


def test_basic_blocks_refuse_grouping():
    with pytest.raises(ValueError, match="bottleneck"):
        ResNet3D((2, 2, 2, 2), block="basic", groups=32)


# ------------------------------------------------------------------- inflation
@pytest.fixture(scope="module")
def tv_resnext50():
    torch.manual_seed(0)
    return randomize_bn(torchvision.models.resnext50_32x4d()).eval()


def test_torchvision_resnext50_maps_key_for_key(tv_resnext50):
    model = create("resnext3d_50", num_classes=1000, temporal=False, dropout=0).eval()
    assert list(model.state_dict()) == list(tv_resnext50.state_dict())
    state, report = inflate_state_dict(tv_resnext50.state_dict(), model, keep_classifier=True)
    assert report.ok and len(report.inflated) == 53, report.summary()
    model.load_state_dict(state)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert rel_err(model(x.unsqueeze(2)), tv_resnext50(x)) < 1e-4


def test_inflated_resnext_sees_2d_activations_on_a_static_clip(tv_resnext50):
    model3d = create("resnext3d_50", num_classes=1000).eval()
    state, report = inflate_state_dict(tv_resnext50.state_dict(), model3d)
    assert report.ok, report.summary()
    model3d.load_state_dict(state, strict=False)
    image = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        f3 = model3d.forward_features(image.unsqueeze(2).repeat(1, 1, 40, 1, 1))
        f2 = tv_resnext50.layer4(tv_resnext50.layer3(tv_resnext50.layer2(tv_resnext50.layer1(
            tv_resnext50.maxpool(tv_resnext50.relu(tv_resnext50.bn1(tv_resnext50.conv1(image))))))))
    assert rel_err(f3[:, :, f3.shape[2] // 2], f2) < 1e-3


@pytest.mark.parametrize("name, groups, improved", [("resgroup3d_50", (8, 16, 32, 64), False),
                                                    ("iresgroupfix3d_50", (64,) * 4, True)])
def test_2d_mode_reproduces_an_independent_resgroup(name, groups, improved):
    torch.manual_seed(1)
    ref = randomize_bn(RefResGroup50(groups, improved)).eval()
    model = create(name, num_classes=1000, temporal=False, dropout=0).eval()
    state, report = inflate_state_dict(ref.state_dict(), model, keep_classifier=True)
    assert report.ok, report.summary()
    model.load_state_dict(state)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert rel_err(model(x.unsqueeze(2)), ref(x)) < 1e-4


# --------------------------------------------------------------------- SeqConv
def test_seqconv_windows_follow_the_sequence():
    """Group i reads the last C_in channels (windowed) or all (dense) of [x, y_1 .. y_{i-1}]."""
    torch.manual_seed(0)
    x = torch.randn(2, 6, 3, 5, 5)
    for windowed in (True, False):
        layer = randomize_bn(SeqConv3d(6, 12, k=4, windowed=windowed)).eval()
        assert [f.conv1.in_channels for f in layer.filters] == ([6, 6, 6] if windowed else [6, 10, 14])
        with torch.no_grad():
            seq, outs = x, []
            for f in layer.filters:
                window = seq[:, -6:] if windowed else seq
                y = torch.relu(f.bn2(f.conv2(torch.relu(f.bn1(f.conv1(window))))))
                outs.append(y)
                seq = torch.cat([seq, y], 1)
            torch.testing.assert_close(layer(x), torch.cat(outs, 1))


def test_seqconv_is_a_drop_in_for_a_wide_conv():
    layer = SeqConv3d(16, 32, k=8, groups=2)
    assert layer(torch.randn(1, 16, 3, 7, 9)).shape == (1, 32, 3, 7, 9)
    assert layer.filters[0].conv2.groups == 2
    with pytest.raises(ValueError, match="multiple of k"):
        SeqConv3d(16, 30, k=8)
    with pytest.raises(ValueError, match="in_channels"):
        SeqConv3d(4, 16, k=8)


def test_seq_block_starts_as_identity_and_joins_the_shortcut_group_by_group():
    torch.manual_seed(0)
    block = randomize_bn(SeqBlock(8, 4)).eval()
    raw = torch.randn(1, 8, 2, 4, 4)
    act = torch.relu(raw)
    with torch.no_grad():
        out_raw, out_act = block((raw, act))
        torch.testing.assert_close(out_raw, raw)  # zero-initialised second layer
        f0, f1 = block.conv2.filters
        torch.testing.assert_close(out_act[:, :4], torch.relu(f0.bn2(raw[:, :4])))
        # With trained weights the second group sees the first group's updated stream.
        for f in (f0, f1):
            nn.init.normal_(f.conv2.weight, std=0.1)
        a = block.conv1(act)
        r0, y0 = f0(a, raw[:, :4])
        r1, _ = f1(torch.cat([a[:, 4:], y0], 1), raw[:, 4:])
        torch.testing.assert_close(block((raw, act))[0], torch.cat([r0, r1], 1))


def test_seqresnet_has_no_stem_pool_and_strided_transitions():
    m = on_meta("seqresnet3d_b22")
    assert not any(isinstance(x, nn.MaxPool3d) for x in m.modules())
    assert m.conv1.stride == (1, 2, 2) and m.stem_shrink.conv.stride == (1, 2, 2)
    assert [m.layer2[0].shrink.conv.stride, m.layer3[0].shrink.conv.stride, m.layer4[0].shrink.conv.stride] == \
        [(1, 2, 2), (2, 2, 2), (2, 2, 2)]
    assert [len(m.layer1), len(m.layer2), len(m.layer3), len(m.layer4)] == [1, 2, 3, 2]  # transitions + blocks
    assert isinstance(m, SeqResNet3D)


# --------------------------------------------------------------------- configs
@pytest.mark.parametrize("arch, stem", [("resnext3d50", "resnext3d_50"), ("iresnext3d50", "iresnext3d_50"),
                                        ("resgroup3d50", "resgroup3d_50"), ("resgroupfix3d50", "resgroupfix3d_50"),
                                        ("iresgroup3d50", "iresgroup3d_50"),
                                        ("iresgroupfix3d50", "iresgroupfix3d_50"),
                                        ("seqresnet3d_b22", "seqresnet3d_b22"),
                                        ("seqresnext3d_24", "seqresnext3d_24")])
def test_configs(arch, stem):
    for dataset, classes in (("kinetics", 400), ("ssv2", 174)):
        cfg = load_config(f"{dataset}_{arch}.yaml")
        assert cfg.MODEL.ARCH == stem and cfg.MODEL.NUM_CLASSES == classes
        assert cfg.MODEL.ARCH in list_models()
