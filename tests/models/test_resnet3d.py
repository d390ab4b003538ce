"""Structure and behaviour of the ResNet3D family on tiny inputs."""
import pytest
import torch
from torch import nn

from vidrec.models import ResNet3D, build_model, create, list_models
from vidrec.models import blocks as B
from vidrec.config import get_cfg

FAMILIES = ("resnet3d", "preact_resnet3d", "resstage3d", "iresnet3d")
DEPTHS = (18, 34, 50, 101, 152, 200, 302, 404)


def test_registry_lists_every_family_and_depth():
    names = set(list_models())
    assert {f"{f}_{d}" for f in FAMILIES for d in DEPTHS} <= names
    assert list_models("iresnet3d_*") == sorted(f"iresnet3d_{d}" for d in DEPTHS)


def test_unknown_model_lists_available():
    with pytest.raises(ValueError, match=r"unknown model 'iresnet3d_51'.*Did you mean.*iresnet3d_50.*Available"):
        create("iresnet3d_51")


def test_bad_kwargs_name_the_model():
    with pytest.raises(TypeError, match="iresnet3d_18"):
        create("iresnet3d_18", colour="red")


@pytest.mark.parametrize("name", [f"{f}_{d}" for f in FAMILIES for d in DEPTHS])
def test_every_variant_trains_on_a_tiny_clip(name):
    torch.manual_seed(0)
    model = create(name, num_classes=5, width_mult=1 / 16)
    x = torch.randn(2, 3, 4, 32, 32)
    logits = model(x)
    assert logits.shape == (2, 5)
    logits.logsumexp(1).mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.conv1.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("shape", [(1, 3, 1, 16, 16), (2, 3, 3, 17, 23), (1, 3, 7, 48, 40), (1, 3, 16, 9, 9)])
@pytest.mark.parametrize("name", ["resnet3d_18", "iresnet3d_18"])
def test_any_clip_length_and_size(name, shape):
    model = create(name, num_classes=3, width_mult=1 / 8).eval()
    assert model(torch.randn(*shape)).shape == (shape[0], 3)


@pytest.mark.parametrize("bad", [torch.randn(2, 3, 16, 16), torch.randn(1, 1, 4, 16, 16),
                                 torch.randn(1, 4, 3, 16, 16, 1), [1, 2, 3]])
def test_wrong_input_is_a_clear_value_error(bad):
    model = create("iresnet3d_18", num_classes=3, width_mult=1 / 8)
    with pytest.raises(ValueError, match=r"expected a clip batch of shape \(N, 3, T, H, W\), got"):
        model(bad)


@pytest.mark.parametrize("name", ["resnet3d_50", "iresnet3d_50", "resstage3d_50", "preact_resnet3d_50"])
def test_stage_outputs_follow_table_11(name):
    """16x224x224 -> 16x56x56, 16x28x28, 8x14x14, 4x7x7 (widths scaled down for speed)."""
    model = create(name, num_classes=4, width_mult=1 / 16).eval()
    with torch.no_grad():
        stages = model.forward_stages(torch.randn(1, 3, 16, 224, 224))
    assert [tuple(s.shape[2:]) for s in stages] == [(16, 56, 56), (16, 28, 28), (8, 14, 14), (4, 7, 7)]
    assert [s.shape[1] for s in stages] == [16, 32, 64, 128]


@pytest.mark.parametrize("name", ["resnet3d_50", "iresnet3d_50", "resstage3d_50", "preact_resnet3d_50",
                                  "iresnet3d_101"])
def test_fifty_layer_embedding_is_2048(name):
    model = create(name, num_classes=400)
    assert model.num_features == 2048
    assert model.fc.in_features == 2048 and model.fc.out_features == 400
    assert isinstance(model.dropout, nn.Dropout) and model.dropout.p == 0.5


def test_feature_api_is_consistent_with_forward():
    torch.manual_seed(0)
    model = create("iresnet3d_50", num_classes=7, width_mult=1 / 8).eval()
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        feats = model.forward_features(x)
        stages = model.forward_stages(x)
        emb = model.forward_head(feats, pre_logits=True)
        torch.testing.assert_close(model.forward_head(feats), model(x))
    torch.testing.assert_close(stages[-1], feats)
    assert emb.shape == (2, model.num_features) == (2, 256)
    torch.testing.assert_close(emb, feats.mean((2, 3, 4)))
    model.reset_classifier(0)
    with torch.no_grad():
        torch.testing.assert_close(model(x), emb)


def test_baseline_wiring():
    m = create("resnet3d_50")
    assert m.conv1.kernel_size == (5, 7, 7) and m.conv1.stride == (1, 2, 2) and m.conv1.padding == (2, 3, 3)
    assert isinstance(m.maxpool, nn.MaxPool3d) and m.maxpool.kernel_size == (1, 3, 3)
    first = m.layer3[0]
    assert isinstance(first, B.Bottleneck)
    assert first.conv1.stride == (1, 1, 1) and first.conv2.stride == (2, 2, 2)  # stride on the 3x3x3
    assert first.conv2.kernel_size == (3, 3, 3)
    assert isinstance(first.downsample[0], nn.Conv3d) and first.downsample[0].stride == (2, 2, 2)
    assert m.layer1[0].conv2.stride == (1, 1, 1) and m.layer2[0].conv2.stride == (1, 2, 2)
    assert all(c.bias is None for c in m.modules() if isinstance(c, nn.Conv3d))


def test_iresnet_wiring():
    m = create("iresnet3d_50")
    assert isinstance(m.maxpool, nn.Identity)  # no stem pool
    assert m.layer1[0].conv2.stride == (1, 2, 2)  # stage 1 downsamples itself
    for layer, kernel, stride in [(m.layer1, (1, 3, 3), (1, 2, 2)), (m.layer2, (1, 3, 3), (1, 2, 2)),
                                  (m.layer3, (3, 3, 3), (2, 2, 2)), (m.layer4, (3, 3, 3), (2, 2, 2))]:
        pool, conv, bn = layer[0].downsample
        assert isinstance(pool, nn.MaxPool3d) and pool.kernel_size == kernel and pool.stride == stride
        assert pool.padding == tuple(k // 2 for k in kernel)
        assert conv.stride == (1, 1, 1) and isinstance(bn, nn.BatchNorm3d)
        positions = [b.position for b in layer]
        assert positions == ["start"] + ["middle"] * (len(layer) - 2) + ["end"]
        assert not hasattr(layer[0], "bn0") and not hasattr(layer[1], "bn0")  # first middle: input is normalised
        assert all(hasattr(b, "bn0") for b in layer[2:])
        assert hasattr(layer[0], "bn3") and hasattr(layer[-1], "bn3")
        assert not any(hasattr(b, "bn3") for b in layer[1:-1])


def test_two_block_stage_end_has_no_bn0():
    m = create("iresnet3d_18")
    assert [b.position for b in m.layer1] == ["start", "end"]
    assert not hasattr(m.layer1[1], "bn0")


def test_resstage_keeps_baseline_stem_and_projection():
    m = create("resstage3d_50")
    assert isinstance(m.maxpool, nn.MaxPool3d)
    assert m.layer1[0].conv2.stride == (1, 1, 1)
    assert isinstance(m.layer3[0].downsample[0], nn.Conv3d) and m.layer3[0].downsample[0].stride == (2, 2, 2)


def test_middle_block_is_pure_preactivation_residual():
    """A middle block adds its branch to the untouched input: nothing after the addition."""
    torch.manual_seed(0)
    block = B.StageBottleneck(16, 4, position="middle", bn0=True).eval()
    x = torch.randn(1, 16, 3, 5, 5)
    with torch.no_grad():
        branch = block.conv3(torch.relu(block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(
            torch.relu(block.bn0(x)))))))))
        torch.testing.assert_close(block(x), x + branch)


def test_end_block_normalises_the_sum():
    torch.manual_seed(0)
    block = B.StageBottleneck(16, 4, position="end", bn0=False).eval()
    x = torch.randn(1, 16, 3, 5, 5)
    with torch.no_grad():
        branch = block.residual(torch.relu(x))
        torch.testing.assert_close(block(x), torch.relu(block.bn3(x + branch)))
        assert (block(x) >= 0).all()


def test_temporal_false_gives_2d_kernels():
    m = create("iresnet3d_50", temporal=False)
    assert all(c.kernel_size[0] == 1 and c.stride[0] == 1 for c in m.modules() if isinstance(c, nn.Conv3d))
    assert m.layer3[0].downsample[0].kernel_size == (1, 3, 3)


def test_width_multiplier_scales_channels():
    m = create("resnet3d_50", width_mult=0.25)
    assert m.conv1.out_channels == 16 and m.num_features == 512


def test_build_model_from_config():
    cfg = get_cfg()
    cfg.MODEL.ARCH, cfg.MODEL.NUM_CLASSES, cfg.MODEL.WIDTH_MULT, cfg.MODEL.DROPOUT_RATE = "resstage3d_18", 11, 0.125, 0.2
    m = build_model(cfg)
    assert isinstance(m, ResNet3D) and m.wiring == "resstage" and m.fc.out_features == 11
    assert m.dropout.p == 0.2
    cfg.MODEL.ARCH = "nope"
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        build_model(cfg)


def test_kaiming_fan_out_init():
    torch.manual_seed(0)
    m = create("resnet3d_50", width_mult=0.5)
    w = m.layer4[0].conv2.weight  # fan_out = 256 * 27
    expected = (2.0 / (w.shape[0] * 27)) ** 0.5
    assert abs(w.std().item() - expected) / expected < 0.05
    assert all((b.weight == 1).all() and (b.bias == 0).all() for b in m.modules() if isinstance(b, nn.BatchNorm3d))


def test_misspelt_options_are_errors_not_ignored():
    """A misspelt option names itself (the registry checks the constructor's keywords); blocks take no
    catch-all keywords, so a wrong one cannot be silently dropped on the way down."""
    import inspect

    from vidrec.models import blocks, create

    with pytest.raises(TypeError, match="num_clases"):
        create("iresnet3d_18", num_clases=3)
    for cls in (blocks.BasicBlock, blocks.Bottleneck, blocks.StageBasicBlock, blocks.StageBottleneck):
        assert not any(p.kind is p.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values())
    with pytest.raises(TypeError, match="bn_zero"):
        blocks.Bottleneck(64, 16, bn_zero=True)
