"""ResNet3D-50 against pytorchvideo's create_resnet building the same network."""
import torch

from vidrec.models import create
from vidrec.models.complexity import count_params
from vidrec.models.reference import copy_weights_to_pytorchvideo, pytorchvideo_resnet3d

from .helpers import randomize_bn


def test_same_parameter_count():
    assert count_params(pytorchvideo_resnet3d(50, 400)) == count_params(create("resnet3d_50")) == 46_999_760


def test_same_outputs_with_shared_weights():
    torch.manual_seed(0)
    ours = randomize_bn(create("resnet3d_50", num_classes=400)).eval()
    ptv = pytorchvideo_resnet3d(50, 400).eval()
    copy_weights_to_pytorchvideo(ours, ptv)
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        a, b = ours(x), ptv(x)
    assert a.shape == b.shape == (1, 400)
    assert ((a - b).abs().max() / b.abs().max()).item() < 1e-4
    # Without moving the temporal stride the networks differ: the check has teeth.
    ptv_default = pytorchvideo_resnet3d(50, 400).eval()
    copy_weights_to_pytorchvideo(ours, ptv_default)
    for stage in ptv_default.blocks[3:5]:
        first = stage.res_blocks[0].branch2
        first.conv_a.stride, first.conv_b.stride = (2, 1, 1), (1, 2, 2)
    with torch.no_grad():
        assert ((ptv_default(x) - b).abs().max() / b.abs().max()).item() > 1e-2
