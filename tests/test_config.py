"""Config loading: defaults <- YAML <- KEY VALUE, with errors that name the problem."""
import pytest

from vidrec.config import CONFIG_DIR, ConfigError, get_cfg, load_config, resolve_config_path

PAPER_CONFIGS = ["kinetics_iresnet3d50.yaml", "kinetics_resnet3d50.yaml",
                 "ssv2_iresnet3d50.yaml", "ssv2_resnet3d50.yaml"]


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIG_DIR.glob("*.yaml")))
def test_every_shipped_config_loads(name):
    cfg = load_config(name)
    from vidrec.models import list_models
    assert cfg.MODEL.ARCH in list_models()


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_paper_settings(name):
    cfg = load_config(name)
    kinetics = name.startswith("kinetics")
    assert cfg.MODEL.ARCH == ("iresnet3d_50" if "iresnet" in name else "resnet3d_50")
    assert cfg.MODEL.NUM_CLASSES == (400 if kinetics else 174)
    assert (cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE) == ((16, 4) if kinetics else (16, 1))
    assert cfg.DATA.RANDOM_FLIP is kinetics
    assert cfg.MODEL.DROPOUT_RATE == 0.5
    assert list(cfg.DATA.TRAIN_JITTER_SCALES) == [256, 320] and cfg.DATA.TRAIN_CROP_SIZE == 224
    assert (cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS, cfg.DATA.TEST_CROP_SIZE) == (10, 3, 256)
    assert (cfg.SOLVER.BASE_LR, cfg.SOLVER.BASE_BATCH_SIZE, cfg.TRAIN.BATCH_SIZE) == (0.1, 64, 64)
    assert list(cfg.SOLVER.STEPS) == [30, 60, 80] and cfg.SOLVER.MAX_EPOCH == 90
    assert (cfg.SOLVER.MOMENTUM, cfg.SOLVER.WEIGHT_DECAY) == (0.9, 1e-4)


def test_bare_name_resolves_against_configs_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_config_path("kinetics_iresnet3d50.yaml") == CONFIG_DIR / "kinetics_iresnet3d50.yaml"
    assert resolve_config_path("kinetics_iresnet3d50") == CONFIG_DIR / "kinetics_iresnet3d50.yaml"
    local = tmp_path / "kinetics_iresnet3d50.yaml"
    local.write_text("MODEL:\n  NUM_CLASSES: 7\n")
    assert load_config("kinetics_iresnet3d50.yaml").MODEL.NUM_CLASSES == 7  # a path that exists wins


def test_overrides_apply_after_the_file():
    cfg = load_config("kinetics_iresnet3d50.yaml",
                      ["SOLVER.BASE_LR", "0.05", "DATA.TRAIN_JITTER_SCALES", "[224, 288]",
                       "SOLVER.MAX_EPOCH", "10", "DATA.RANDOM_FLIP", "False", "OUTPUT_DIR", "runs/1"])
    assert cfg.SOLVER.BASE_LR == 0.05 and list(cfg.DATA.TRAIN_JITTER_SCALES) == [224, 288]
    assert cfg.SOLVER.MAX_EPOCH == 10 and cfg.DATA.RANDOM_FLIP is False and cfg.OUTPUT_DIR == "runs/1"


def test_int_for_float_is_accepted():
    assert load_config(None, ["SOLVER.BASE_LR", "1"]).SOLVER.BASE_LR == 1.0


def test_unknown_key_suggests_close_matches(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'SOLVER.BASE_LRR'.*Did you mean: SOLVER.BASE_LR"):
        load_config(None, ["SOLVER.BASE_LRR", "0.1"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("MODEL:\n  ARCH: resnet3d_50\n  NUM_CLASS: 10\n")
    with pytest.raises(ConfigError, match=rf"{bad}: unknown config key 'MODEL.NUM_CLASS'.*MODEL.NUM_CLASSES"):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"unknown config key 'SOLVR'.*SOLVER"):
        load_config(None, ["SOLVR.BASE_LR", "0.1"])


def test_wrong_types_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"'SOLVER.BASE_LR' expects float.*got str 'fast'"):
        load_config(None, ["SOLVER.BASE_LR", "fast"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("TRAIN:\n  BATCH_SIZE: [8]\n")
    with pytest.raises(ConfigError, match=r"'TRAIN.BATCH_SIZE' expects int"):
        load_config(bad)
    bad.write_text("TRAIN: 3\n")
    with pytest.raises(ConfigError, match=r"'TRAIN' is a section"):
        load_config(bad)


def test_missing_file_and_odd_overrides():
    with pytest.raises(ConfigError, match=r"config file not found: 'kinetics_iresnet50.yaml'.*Did you mean: kinetics_iresnet3d50.yaml"):
        load_config("kinetics_iresnet50.yaml")
    with pytest.raises(ConfigError, match="KEY VALUE pairs"):
        load_config(None, ["SOLVER.BASE_LR"])


def test_yaml_is_loaded_safely(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("OUTPUT_DIR: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(evil)
    garbled = tmp_path / "garbled.yaml"
    garbled.write_text("MODEL: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(garbled)


def test_base_inheritance_and_cycles(tmp_path):
    (tmp_path / "a.yaml").write_text("_BASE_: kinetics_resnet3d50.yaml\nMODEL:\n  NUM_CLASSES: 5\n")
    cfg = load_config(tmp_path / "a.yaml")
    assert (cfg.MODEL.ARCH, cfg.MODEL.NUM_CLASSES, cfg.DATA.SAMPLING_RATE) == ("resnet3d_50", 5, 4)
    (tmp_path / "b.yaml").write_text("_BASE_: c.yaml\n")
    (tmp_path / "c.yaml").write_text("_BASE_: b.yaml\n")
    with pytest.raises(ConfigError, match="loops back"):
        load_config(tmp_path / "b.yaml")


def test_cross_key_validation():
    with pytest.raises(ConfigError, match="MIXED_PRECISION must be fp32, bf16 or fp16"):
        load_config(None, ["TRAIN.MIXED_PRECISION", "fp8"])
    with pytest.raises(ConfigError, match="JITTER_SCALES"):
        load_config(None, ["DATA.TRAIN_JITTER_SCALES", "[320, 256]"])


def test_defaults_are_a_fresh_copy():
    a = get_cfg()
    a.MODEL.NUM_CLASSES = 3
    assert get_cfg().MODEL.NUM_CLASSES == 400


@pytest.mark.parametrize("tool", ["train_net", "test_net"])
def test_tools_report_config_errors_in_one_line(tool, capsys):
    import importlib

    main = importlib.import_module(f"tools.{tool}").main
    assert main(["--cfg", "tiny_cpu", "MEMORY_FORMAT", "sideways"]) == 2
    err = capsys.readouterr().err
    assert err == "error: MEMORY_FORMAT must be auto, channels_last or contiguous, got 'sideways'\n"
    assert main(["--cfg", "tiny_cpu", "TRAIN.BACH_SIZE", "4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "TRAIN.BATCH_SIZE" in err and err.count("\n") == 1


def _numeric_keys(node, prefix=""):
    """Dotted keys of the defaults whose value is a number, or a list holding numbers."""
    from fvcore.common.config import CfgNode

    def numbers(v):
        return (isinstance(v, (int, float)) and not isinstance(v, bool)) or (
            isinstance(v, (list, tuple)) and any(numbers(x) for x in v))

    for k, v in node.items():
        if isinstance(v, CfgNode):
            yield from _numeric_keys(v, prefix + k + ".")
        elif numbers(v):
            yield prefix + k


def test_every_numeric_default_declares_its_range():
    """A new int/float key without a declared range fails here (and the defaults lie in their own ranges)."""
    from vidrec.config.defaults import RANGES

    cfg = get_cfg()
    numeric = set(_numeric_keys(cfg))
    assert numeric and numeric <= set(RANGES), f"no range declared for {sorted(numeric - set(RANGES))}"
    for key, allowed in RANGES.items():
        node = cfg
        for part in key.split("."):
            node = node[part]  # every declared range names a real key
        assert not isinstance(node, (str, bool)) and allowed.check(key, node) is None, key


@pytest.mark.parametrize("key,value,allowed", [
    ("TRAIN.CHECKPOINT_PERIOD", "0", ">= 1"),
    ("LOG_PERIOD", "0", ">= 1"),
    ("SOLVER.BASE_BATCH_SIZE", "0", ">= 1"),
    ("TEST.NUM_SPATIAL_CROPS", "0", ">= 1"),
    ("SOLVER.MAX_EPOCH", "-2", ">= 1"),
    ("TRAIN.KEEP_LAST", "-1", ">= 0"),
    ("MODEL.DROPOUT_RATE", "1.0", "in [0, 1)"),
    ("SOLVER.BASE_LR", "0", "> 0"),
    ("SOLVER.BASE_LR", ".nan", "> 0"),
    ("DATA.MAX_FAIL_RATE", "1.5", "in [0, 1]"),
])
def test_out_of_range_values_are_one_line_errors(key, value, allowed):
    with pytest.raises(ConfigError) as e:
        load_config("tiny_cpu", [key, value])
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{key} must be {allowed}, got ")


def test_range_errors_from_a_file_and_for_list_elements(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("TRAIN:\n  CHECKPOINT_PERIOD: 0\n")
    with pytest.raises(ConfigError, match=r"^TRAIN.CHECKPOINT_PERIOD must be >= 1, got 0$"):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"^DATA.STD values must be > 0, got \[0.2, 0.0, 0.2\]$"):
        load_config(None, ["DATA.STD", "[0.2, 0.0, 0.2]"])
    with pytest.raises(ConfigError, match=r"^DATA.MEAN values must be numbers"):
        load_config(None, ["DATA.MEAN", "['a', 'b', 'c']"])
    # 0 where it means "off" stays allowed.
    cfg = load_config(None, ["TRAIN.EVAL_PERIOD", "0", "TRAIN.CHECKPOINT_ITERS", "0", "TRAIN.CLIP_GRAD_NORM", "0",
                             "TEST.CLIPS_PER_FORWARD", "0", "NUM_THREADS", "0", "DATA.MAX_RETRIES", "0"])
    assert cfg.TRAIN.EVAL_PERIOD == 0


def test_train_net_refuses_a_bad_range_before_training(capsys):
    from tools.train_net import main

    assert main(["--cfg", "tiny_cpu", "TRAIN.CHECKPOINT_PERIOD", "0"]) == 2
    assert capsys.readouterr().err == "error: TRAIN.CHECKPOINT_PERIOD must be >= 1, got 0\n"
