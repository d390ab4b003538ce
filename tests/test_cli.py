"""The ``vidrec`` command, shipped configs and class lists found from any directory,
one-line errors, and the self-describing model folder (save/from_pretrained, torch.hub)."""
import json
import os
from pathlib import Path

import pytest
import torch

from vidrec.cli import COMMANDS, main as vidrec

REPO = Path(__file__).resolve().parents[1]


def test_help_lists_every_subcommand(capsys):
    assert vidrec(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("train", "test", "predict", "extract", "export", "complexity", "check-videos", "prepare",
                 "build-lists", "demo", "configs"):
        assert f"  {name} " in out
    assert set(COMMANDS) == {"train", "test", "predict", "extract", "export", "complexity", "check-videos",
                             "prepare", "build-lists", "demo", "configs"}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        vidrec([name, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: vidrec {name}") and len(out.splitlines()) > 5


def test_unknown_command_is_one_line(capsys):
    assert vidrec(["trian"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Did you mean: train?" in err


def test_configs_lists_shipped_configs_and_models(capsys):
    assert vidrec(["configs"]) == 0
    out = capsys.readouterr().out
    assert "kinetics_iresnet3d50 " in out and "ssv2_resnet3d50 " in out and "tiny_cpu " in out
    assert "iresnet3d_404" in out
    assert vidrec(["configs", "--models"]) == 0
    assert "resnet3d_50" in capsys.readouterr().out.split()


def test_shipped_configs_and_class_lists_from_another_directory(tmp_path, monkeypatch, capsys):
    from vidrec.config import load_config
    from vidrec.data.lists import find_list, read_class_names

    monkeypatch.chdir(tmp_path)
    # A user's YAML, by path, whose _BASE_ is a shipped config given by bare name.
    (tmp_path / "mine.yaml").write_text("_BASE_: kinetics_iresnet3d50.yaml\nSOLVER:\n  BASE_LR: 0.05\n")
    cfg = load_config("mine.yaml")
    assert cfg.MODEL.ARCH == "iresnet3d_50" and cfg.SOLVER.BASE_LR == 0.05 and cfg.SOLVER.MAX_EPOCH == 90
    # The config names data_lists/kinetics400_classes.txt: the shipped map is found from here.
    assert len(read_class_names(find_list(cfg.MODEL.CLASS_NAMES))) == 400
    assert vidrec(["complexity", "--cfg", "kinetics_iresnet3d50"]) == 0
    assert "46,999,760" in capsys.readouterr().out


def test_missing_kinetics_lists_say_how_to_build_them(tmp_path, monkeypatch, capsys):
    """The paper's users' first command on a machine without Kinetics: one line, and the fix."""
    monkeypatch.chdir(tmp_path)
    assert vidrec(["train", "--cfg", "kinetics_iresnet3d50.yaml", "OUTPUT_DIR", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: DATA.TRAIN_LIST list file not found: "
                                                   "data_lists/kinetics400_train.csv")
    assert "vidrec build-lists kinetics" in err and "DATA.PATH_TO_DATA_DIR" in err
    monkeypatch.setenv("VIDREC_DEBUG", "1")
    from vidrec.data.lists import ListError

    with pytest.raises(ListError):
        vidrec(["train", "--cfg", "kinetics_iresnet3d50.yaml", "OUTPUT_DIR", str(tmp_path / "run")])


def _tiny_cfg(classes=4):
    from vidrec.config import load_config

    return load_config("tiny_cpu", ["MODEL.NUM_CLASSES", str(classes)])


def test_pretrained_folder_round_trip(tmp_path):
    from vidrec.models import build_model
    from vidrec.models.pretrained import from_pretrained, pretrained_config, save_pretrained

    cfg = _tiny_cfg()
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    for m in model.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.1, 0.1)
    names = ["a", "b", "c", "d"]
    save_pretrained(model, cfg, tmp_path / "m", names)
    assert sorted(os.listdir(tmp_path / "m")) == ["config.json", "model.safetensors"]
    doc = json.loads((tmp_path / "m" / "config.json").read_text())
    assert doc["clip"] == {"num_frames": 4, "sampling_rate": 2} and doc["class_names"] == names
    assert doc["input"]["mean"] == [0.45, 0.45, 0.45] and doc["input"]["test_crop_size"] == 32

    again = from_pretrained(tmp_path / "m")
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    assert again.pretrained_cfg["class_names"] == names and not again.training
    cfg2, names2 = pretrained_config(tmp_path / "m", ["TEST.NUM_ENSEMBLE_VIEWS", "5"])
    assert cfg2.MODEL.ARCH == cfg.MODEL.ARCH and cfg2.TEST.NUM_ENSEMBLE_VIEWS == 5 and names2 == names
    with pytest.raises(ValueError, match="3 class names"):
        save_pretrained(model, cfg, tmp_path / "bad", names[:3])


def test_pretrained_folder_bad_input(tmp_path):
    from vidrec.models import build_model
    from vidrec.models.pretrained import from_pretrained, save_pretrained
    from vidrec.models.weights import CheckpointError

    with pytest.raises(CheckpointError, match="model folder not found"):
        from_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a vidrec model folder"):
        from_pretrained(tmp_path / "empty")
    cfg = _tiny_cfg()
    save_pretrained(build_model(cfg), cfg, tmp_path / "m")
    cfg_file = tmp_path / "m" / "config.json"
    good = cfg_file.read_text()
    cfg_file.write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        from_pretrained(tmp_path / "m")
    cfg_file.write_text(good.replace('"num_classes": 4', '"num_classes": 7'))
    with pytest.raises(CheckpointError, match="does not fit"):
        from_pretrained(tmp_path / "m")


def test_predictor_from_pretrained_equals_cfg_and_weights(tmp_path):
    import numpy as np

    from vidrec.inference.predictor import Predictor
    from vidrec.models import build_model
    from vidrec.models.pretrained import save_pretrained

    cfg = _tiny_cfg()
    torch.manual_seed(1)
    model = build_model(cfg)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    save_pretrained(model, cfg, tmp_path / "m", ["w", "x", "y", "z"])
    a = Predictor(cfg, str(tmp_path / "w.pt"), device="cpu")
    b = Predictor.from_pretrained(tmp_path / "m", device="cpu")
    clips = torch.randint(0, 256, (2, 4, 32, 32, 3), dtype=torch.uint8)
    np.testing.assert_array_equal(a.probs(clips), b.probs(clips))
    assert b.label(2) == "y" and a.label(2) == "2"


def test_torch_hub_local(tmp_path):
    from vidrec.models import build_model
    from vidrec.models.pretrained import save_pretrained

    net = torch.hub.load(str(REPO), "iresnet3d_18", source="local", num_classes=5, width_mult=0.125)
    assert net.fc.out_features == 5
    cfg = _tiny_cfg()
    model = build_model(cfg).eval()
    torch.save(model.state_dict(), tmp_path / "w.pt")
    loaded = torch.hub.load(str(REPO), "iresnet3d_18", source="local", num_classes=4, width_mult=0.125,
                            weights=str(tmp_path / "w.pt")).eval()
    save_pretrained(model, cfg, tmp_path / "m")
    folder = torch.hub.load(str(REPO), "from_pretrained", str(tmp_path / "m"), source="local")
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x)) and torch.equal(folder(x), model(x))
