"""2D -> 3D inflation and 2D-mode equivalence against independent 2D networks."""
import pytest
import torch
import torchvision

from vidrec.models import create
from vidrec.models.inflate import inflate_from_file, inflate_state_dict, inflate_weight
from vidrec.models.weights import CheckpointError, UnsafeCheckpointError, load_weights, read_state_dict

from .helpers import randomize_bn
from .reference_iresnet2d import RefIResNet50


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.fixture(scope="module")
def tv_resnet50():
    torch.manual_seed(0)
    return randomize_bn(torchvision.models.resnet50()).eval()


@pytest.fixture(scope="module")
def ref_iresnet50():
    torch.manual_seed(1)
    return randomize_bn(RefIResNet50()).eval()


def test_inflate_weight_sums_back_to_2d():
    w = torch.randn(4, 3, 7, 7)
    w3 = inflate_weight(w, 5)
    assert w3.shape == (4, 3, 5, 7, 7)
    torch.testing.assert_close(w3.sum(2), w)


@pytest.mark.parametrize("arch, ref", [("resnet3d_50", "tv_resnet50"), ("iresnet3d_50", "ref_iresnet50")])
def test_2d_mode_reproduces_the_2d_network(arch, ref, request):
    net2d = request.getfixturevalue(ref)
    model = create(arch, num_classes=1000, temporal=False, dropout=0).eval()
    state, report = inflate_state_dict(net2d.state_dict(), model, keep_classifier=True)
    assert report.ok, report.summary()
    model.load_state_dict(state)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert rel_err(model(x.unsqueeze(2)), net2d(x)) < 1e-4


@pytest.mark.parametrize("arch, ref", [("resnet3d_50", "tv_resnet50"), ("iresnet3d_50", "ref_iresnet50")])
def test_inflated_network_reproduces_2d_activations_on_a_static_clip(arch, ref, request):
    """Away from the temporal borders every frame sees the 2D network's activations."""
    net2d = request.getfixturevalue(ref)
    model3d = create(arch, num_classes=1000).eval()
    state, report = inflate_state_dict(net2d.state_dict(), model3d, keep_classifier=True)
    assert report.ok and len(report.inflated) == 53, report.summary()
    model3d.load_state_dict(state)
    model2d = create(arch, num_classes=1000, temporal=False).eval()
    model2d.load_state_dict(inflate_state_dict(net2d.state_dict(), model2d, keep_classifier=True)[0])
    image = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        f3 = model3d.forward_stages(image.unsqueeze(2).repeat(1, 1, 40, 1, 1))
        f2 = model2d.forward_stages(image.unsqueeze(2))
    for a, b in zip(f3, f2):
        mid = a.shape[2] // 2
        assert rel_err(a[:, :, mid], b[:, :, 0]) < 1e-3
    # ...and the borders differ (zero padding in time), so the check is not vacuous.
    assert rel_err(f3[1][:, :, 0], f2[1][:, :, 0]) > 1e-2


def test_classifier_dropped_by_default_and_reported(tv_resnet50, tmp_path):
    path = tmp_path / "r50.pth"
    torch.save(tv_resnet50.state_dict(), path)
    model = create("resnet3d_50", num_classes=10, width_mult=1.0)
    fc_before = model.fc.weight.clone()
    report = inflate_from_file(model, path)
    assert report.skipped_classifier == ["fc.bias", "fc.weight"] or set(report.skipped_classifier) == {"fc.weight", "fc.bias"}
    torch.testing.assert_close(model.fc.weight, fc_before)
    torch.testing.assert_close(model.layer1[0].conv1.weight[:, :, 0, 0, 0],
                               tv_resnet50.layer1[0].conv1.weight[:, :, 0, 0])


def test_mismatched_checkpoint_names_the_keys(tv_resnet50, tmp_path):
    state = dict(tv_resnet50.state_dict())
    state["layer9.extra"] = torch.zeros(3)
    del state["layer2.0.bn1.running_mean"]
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"missing: layer2\.0\.bn1\.running_mean.*unexpected: layer9\.extra"):
        inflate_from_file(create("resnet3d_50"), path)
    with pytest.raises(ValueError, match=r"mismatched: layer1\.0\.conv1\.weight \(64, 64, 3, 3\) vs \(64, 64, 1, 1, 1\)"):
        path2 = tmp_path / "r18.pth"
        torch.save(torchvision.models.resnet18().state_dict(), path2)
        inflate_from_file(create("resnet3d_50"), path2)


def test_unsafe_pickle_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.ones(1)}, "extra": Payload()}, path)
    with pytest.raises(UnsafeCheckpointError, match="Refusing to load"):
        read_state_dict(path)


def test_junk_and_missing_files_are_clear_errors(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a readable PyTorch checkpoint"):
        read_state_dict(junk)
    with pytest.raises(CheckpointError, match="weights file not found"):
        read_state_dict(tmp_path / "absent.pt")
    bad_st = tmp_path / "junk.safetensors"
    bad_st.write_bytes(b"\x00" * 20)
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        read_state_dict(bad_st)


def test_wrapped_ddp_and_safetensors_round_trip(tmp_path):
    from safetensors.torch import save_file

    model = create("iresnet3d_18", num_classes=3, width_mult=1 / 8)
    wrapped = {"epoch": 3, "model": {f"module.{k}": v for k, v in model.state_dict().items()}}
    torch.save(wrapped, tmp_path / "ckpt.pt")
    save_file(model.state_dict(), tmp_path / "w.safetensors")
    for name in ("ckpt.pt", "w.safetensors"):
        other = create("iresnet3d_18", num_classes=3, width_mult=1 / 8)
        load_weights(other, tmp_path / name)
        for k, v in model.state_dict().items():
            assert torch.equal(other.state_dict()[k], v)
    with pytest.raises(CheckpointError, match=r"shape mismatches: fc\.bias \(3,\) vs model \(4,\), fc\.weight"):
        load_weights(create("iresnet3d_18", num_classes=4, width_mult=1 / 8), tmp_path / "w.safetensors")
