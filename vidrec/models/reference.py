"""The same ResNet3D built by pytorchvideo, an independent implementation.

Used by the tests (equal outputs with shared weights) and the benchmarks
(speed side by side). pytorchvideo puts a stage's temporal stride on the
first 1x1x1 conv; the paper puts it on the 3x3x3 conv, so the strides are
moved after building. pytorchvideo is an optional dependency.
"""
from __future__ import annotations

from torch import nn


def pytorchvideo_resnet3d(depth: int = 50, num_classes: int = 400, dropout: float = 0.5) -> nn.Module:
    from pytorchvideo.models.resnet import create_resnet

    model = create_resnet(
        model_depth=depth, model_num_class=num_classes, dropout_rate=dropout,
        stem_conv_kernel_size=(5, 7, 7),
        stage_conv_a_kernel_size=((1, 1, 1),) * 4,
        stage_conv_b_kernel_size=((3, 3, 3),) * 4,
        stage_temporal_stride=(1, 1, 2, 2),
        head_pool=nn.AdaptiveAvgPool3d, head_pool_kernel_size=(1, 1, 1),
    )
    for stage in model.blocks[1:5]:
        first = stage.res_blocks[0].branch2
        t = first.conv_a.stride[0]
        first.conv_a.stride = (1, 1, 1)
        first.conv_b.stride = (t,) + tuple(first.conv_b.stride[1:])
    return model


def copy_weights_to_pytorchvideo(ours: nn.Module, ptv: nn.Module) -> None:
    """Copy a vidrec ``resnet3d_*`` (baseline wiring) into ``pytorchvideo_resnet3d``."""
    pairs = [(ours.conv1, ptv.blocks[0].conv), (ours.bn1, ptv.blocks[0].norm)]
    for ours_stage, ptv_stage in zip((ours.layer1, ours.layer2, ours.layer3, ours.layer4), ptv.blocks[1:5]):
        for a, b in zip(ours_stage, ptv_stage.res_blocks):
            br = b.branch2
            pairs += [(a.conv1, br.conv_a), (a.bn1, br.norm_a), (a.conv2, br.conv_b), (a.bn2, br.norm_b),
                      (a.conv3, br.conv_c), (a.bn3, br.norm_c)]
            if a.downsample is not None:
                pairs += [(a.downsample[0], b.branch1_conv), (a.downsample[1], b.branch1_norm)]
    pairs.append((ours.fc, ptv.blocks[-1].proj))
    for src, dst in pairs:
        dst.load_state_dict(src.state_dict())
