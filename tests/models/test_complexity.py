"""The paper's parameter and FLOP figures (Table 4 and the 2D sanity check)."""
import pytest
import torch

from vidrec.models import create
from vidrec.models.complexity import count_params, fvcore_flops, model_complexity, paper_flops

CLIP = (1, 3, 16, 224, 224)
IMAGE = (1, 3, 1, 224, 224)


def on_meta(name, **kw):
    with torch.device("meta"):
        return create(name, **kw)


@pytest.mark.parametrize("name", ["resnet3d_50", "iresnet3d_50", "resstage3d_50"])
@pytest.mark.parametrize("classes, params", [(400, 46_999_760), (174, 46_536_686)])
def test_params_match_table_4(name, classes, params):
    assert count_params(on_meta(name, num_classes=classes)) == params


@pytest.mark.parametrize("name", ["resnet3d_101", "iresnet3d_101"])
def test_params_101(name):
    assert count_params(on_meta(name, num_classes=400)) == 86_045_904


@pytest.mark.parametrize("name, gflops", [("resnet3d_50", 93.26), ("iresnet3d_50", 93.93),
                                          ("resnet3d_101", 154.60), ("iresnet3d_101", 155.25)])
def test_paper_convention_gflops(name, gflops):
    assert round(paper_flops(on_meta(name, num_classes=400), CLIP) / 1e9, 2) == gflops


def test_paper_gflops_do_not_depend_on_classes_much():
    assert round(paper_flops(on_meta("resnet3d_50", num_classes=174), CLIP) / 1e9, 2) == 93.26


@pytest.mark.parametrize("name, params, paper, fvcore", [
    ("resnet3d_50", 25_557_032, 4.14, 4.11),
    ("iresnet3d_50", 25_557_032, 4.18, 4.15),
])
def test_2d_mode_matches_the_image_networks(name, params, paper, fvcore):
    model = create(name, num_classes=1000, temporal=False)
    assert count_params(model) == params
    assert round(paper_flops(model, IMAGE) / 1e9, 2) == paper
    assert round(fvcore_flops(model, IMAGE) / 1e9, 2) == fvcore


@pytest.mark.parametrize("name, fvcore", [("resnet3d_50", 92.83), ("iresnet3d_50", 93.47)])
def test_fvcore_gflops_3d(name, fvcore):
    """fvcore needs real tensors; the full-size clip takes a few seconds per model."""
    result = model_complexity(create(name, num_classes=400), CLIP)
    assert round(result["fvcore_gflops"], 2) == fvcore
    assert result["params"] == 46_999_760


def test_relu_reuse_counts_last_call_only():
    """One ReLU module used three times counts once (thop assigned, it did not add)."""
    relu = torch.nn.ReLU()

    class Twice(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.relu = relu
            self.lin = torch.nn.Linear(4, 2, bias=False)

        def forward(self, x):
            return self.lin(self.relu(self.relu(torch.cat([x, x], 1))[:, :4]))

    assert paper_flops(Twice(), (3, 2)) == 3 * 4 + 3 * 2 * (2 * 4 - 1)
