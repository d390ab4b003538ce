"""Folded-BN inference path equals the eager model."""
import pytest
import torch
from torch import nn

from vidrec.models import create
from vidrec.models.fuse import fold_batchnorm

from .helpers import randomize_bn


def count_bn(model):
    return sum(isinstance(m, nn.BatchNorm3d) for m in model.modules())


@pytest.mark.parametrize("name, left", [("resnet3d_50", 0), ("iresnet3d_50", 12), ("resstage3d_18", 4),
                                        ("iresnet3d_34", 12), ("preact_resnet3d_18", 17)])
def test_folded_model_matches_eager(name, left):
    """Only BNs without a conv right before them stay (BN0 and the End block's BN)."""
    torch.manual_seed(0)
    model = randomize_bn(create(name, num_classes=10, width_mult=0.25)).eval()
    folded = fold_batchnorm(model)
    assert count_bn(folded) == left and count_bn(model) > left  # the original is untouched
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.inference_mode():
        ref, out = model(x), folded(x)
        cl = folded.to(memory_format=torch.channels_last_3d)(x.contiguous(memory_format=torch.channels_last_3d))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(cl, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["resnext3d_50", "iresgroup3d_50", "resgroupfix3d_50", "seqresnet3d_b22"])
def test_folding_other_families(name):
    torch.manual_seed(0)
    model = randomize_bn(create(name, num_classes=10, width_mult=0.25)).eval()
    folded = fold_batchnorm(model)
    assert count_bn(folded) < count_bn(model)
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-4)


def test_a_block_that_does_not_say_how_it_folds_is_an_error():
    """A new block type with BatchNorms must declare its (conv, BN) pairs, not be silently left unfolded."""
    class NewBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv3d(3, 4, 1), nn.BatchNorm3d(4)

        def forward(self, x):
            return self.bn(self.conv(x))

    with pytest.raises(TypeError, match="NewBlock holds BatchNorm layers but has no fold_pairs"):
        fold_batchnorm(nn.Sequential(NewBlock(), nn.ReLU()))
    NewBlock.fold_pairs = lambda self: [("conv", "bn")]
    model = randomize_bn(nn.Sequential(NewBlock(), nn.ReLU())).eval()
    folded = fold_batchnorm(model)
    x = torch.randn(1, 3, 2, 4, 4)
    assert count_bn(folded) == 0
    torch.testing.assert_close(folded(x), model(x), rtol=1e-5, atol=1e-5)


def test_every_registered_model_says_how_it_folds():
    from vidrec.models import list_models
    from vidrec.models.fuse import _pairs

    for name in list_models():
        if name.endswith(("_152", "_200", "_302", "_404")):
            continue  # same blocks as the shallower ones, only more of them
        model = create(name, num_classes=4, width_mult=0.125) if not name.startswith("seq") else create(name)
        assert list(_pairs(model)), name
