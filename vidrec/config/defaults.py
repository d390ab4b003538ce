"""Every configuration key vidrec knows, with its default.

One place, PySlowFast style: a YAML file overrides these, then ``KEY VALUE``
pairs from the command line override the file. A key that is not defined here
is an error, so typos never pass silently.

Every numeric key declares its allowed range right below it (``at_least``,
``positive``, ``between``); ``vidrec.config.loader.validate`` checks every key
of :data:`RANGES` when a config loads, and ``tests/test_config.py`` fails for a
numeric key without one. 0 is allowed where it means "off" (said in the comment).
"""
import math
from dataclasses import dataclass
from typing import Dict, Optional

from fvcore.common.config import CfgNode


def _show(x) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _flat(v):
    for x in v:
        if isinstance(x, (list, tuple)):
            yield from _flat(x)
        else:
            yield x


@dataclass(frozen=True)
class Range:
    """Allowed values of a numeric key (of every element, for a list key): finite numbers with
    ``lo <= v <= hi`` (an end excluded when ``lo_open`` / ``hi_open``; None: unbounded)."""
    lo: Optional[float] = None
    hi: Optional[float] = None
    lo_open: bool = False
    hi_open: bool = False

    def __str__(self) -> str:
        if self.lo is None and self.hi is None:
            return "a finite number"
        if self.hi is None:
            return f"{'>' if self.lo_open else '>='} {_show(self.lo)}"
        if self.lo is None:
            return f"{'<' if self.hi_open else '<='} {_show(self.hi)}"
        return (f"in {'(' if self.lo_open else '['}{_show(self.lo)}, "
                f"{_show(self.hi)}{')' if self.hi_open else ']'}")

    def allows(self, v) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return False
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        return self.hi is None or (v < self.hi if self.hi_open else v <= self.hi)

    def check(self, key: str, value) -> Optional[str]:
        """None when ``value`` is allowed, else the one-line error message."""
        if isinstance(value, (list, tuple)):
            flat = list(_flat(value))
            if any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in flat):
                return f"{key} values must be numbers {self}, got {list(value)!r}"
            return None if all(self.allows(x) for x in flat) else f"{key} values must be {self}, got {list(value)!r}"
        return None if self.allows(value) else f"{key} must be {self}, got {value!r}"


# Dotted key -> allowed range, filled by the declarations below.
RANGES: Dict[str, Range] = {}


def at_least(key: str, lo: float) -> None:
    RANGES[key] = Range(lo)


def positive(key: str) -> None:
    RANGES[key] = Range(0, lo_open=True)


def between(key: str, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> None:
    RANGES[key] = Range(lo, hi, lo_open, hi_open)


# Dotted key -> range of the keys that take a whole number or "auto" (default "auto").
COUNT_OR_AUTO: Dict[str, Range] = {}


def count_or_auto(key: str, lo: int) -> None:
    COUNT_OR_AUTO[key] = Range(lo)


_C = CfgNode()

# ----------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------
_C.MODEL = CfgNode()
# Registry name, see vidrec.models.list_models(): e.g. iresnet3d_50, resnet3d_50.
_C.MODEL.ARCH = "iresnet3d_50"
_C.MODEL.NUM_CLASSES = 400
at_least("MODEL.NUM_CLASSES", 1)
# Dropout before the classifier (paper: 0.5 for video).
_C.MODEL.DROPOUT_RATE = 0.5
between("MODEL.DROPOUT_RATE", 0, 1, hi_open=True)
# Multiplies every channel width (stem and stages); < 1 for fast CPU models.
_C.MODEL.WIDTH_MULT = 1.0
positive("MODEL.WIDTH_MULT")
# 2D mode: temporal kernels and strides of 1 (the image networks, for checks).
_C.MODEL.TWO_D = False
# Optional 2D ImageNet checkpoint (torchvision / authors' iResNet layout) to inflate.
_C.MODEL.INFLATE_FROM = ""
# Convert BatchNorm to SyncBatchNorm under DDP.
_C.MODEL.SYNC_BN = False
# File with one class name per line (index = line number); empty prints indices.
_C.MODEL.CLASS_NAMES = ""

# ----------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------
_C.DATA = CfgNode()
# "kinetics" (official CSV or path-label list) | "ssv2" (official JSON or list) |
# "list" (path label) | "folder" (one folder per class). The synthetic demo set is a "list".
_C.DATA.DATASET = "list"
# Root that relative video paths in the lists are resolved against.
_C.DATA.PATH_TO_DATA_DIR = ""
# Lists / annotation files per split (relative to data_lists/ or absolute).
_C.DATA.TRAIN_LIST = ""
_C.DATA.VAL_LIST = ""
_C.DATA.TEST_LIST = ""
# SSv2 labels JSON (template -> id) used to resolve train/validation JSONs.
_C.DATA.LABELS_FILE = ""
# Allow list entries that point outside PATH_TO_DATA_DIR (absolute paths, "..").
_C.DATA.ALLOW_OUTSIDE_ROOT = False
# Clip: NUM_FRAMES frames, SAMPLING_RATE apart (K400 16x4, SSv2 16x1).
_C.DATA.NUM_FRAMES = 16
at_least("DATA.NUM_FRAMES", 1)
_C.DATA.SAMPLING_RATE = 4
at_least("DATA.SAMPLING_RATE", 1)
# Videos shorter than a clip: "loop" the indices or "repeat_last" frame.
_C.DATA.SHORT_VIDEO = "loop"
# Decoder backends in the order they are tried: "decord", "pyav", "torchcodec" (optional
# extra). A backend that cannot read a file, or is refused for its kind (see
# vidrec/data/backends/), hands it to the next. A single name means [name, "pyav"].
_C.DATA.DECODER = ["decord", "pyav"]
# False: only the first backend of DATA.DECODER is tried.
_C.DATA.DECODER_FALLBACK = True
# A video whose stream breaks after k frames: "keep" uses it as a k-frame video (clips
# re-planned, a warning logged), "fail" treats it as unreadable. Same rule in every tool.
_C.DATA.PARTIAL_VIDEO = "keep"
# Training spatial augmentation.
_C.DATA.TRAIN_JITTER_SCALES = [256, 320]
at_least("DATA.TRAIN_JITTER_SCALES", 1)
_C.DATA.TRAIN_CROP_SIZE = 224
at_least("DATA.TRAIN_CROP_SIZE", 1)
_C.DATA.RANDOM_FLIP = True
# Label-aware flip: pairs of class ids swapped when a clip is flipped (SSv2).
_C.DATA.FLIP_SWAP_PAIRS = []
at_least("DATA.FLIP_SWAP_PAIRS", 0)
# Training crops: resize on the model's device (GPU) instead of in the loader
# workers, for when the CPU is the bottleneck. The workers then only decode and
# cut the source region; the crop drawn is the same.
_C.DATA.RESIZE_ON_DEVICE = False
# Repeated augmentation (PySlowFast's NUM_SAMPLES): each training video gives this many
# clips, each with its own start, crop and flip, from one decode of the union of their
# frames. TRAIN.BATCH_SIZE still counts clips (it must be divisible by this x processes),
# so a step sees BATCH_SIZE / k videos and an epoch (every video once, k clips each) has
# k times as many steps. 1: one clip.
_C.DATA.TRAIN_CLIPS_PER_VIDEO = 1
at_least("DATA.TRAIN_CLIPS_PER_VIDEO", 1)
# True: those clips share one start (one clip's frames, k crops and flips: PySlowFast's
# NUM_SAMPLES with TRAIN_CROP_NUM_TEMPORAL 1, as in its MAE recipe), so the decode costs
# what one clip costs; False: each clip has its own start (the union is decoded).
_C.DATA.TRAIN_CLIPS_SHARE_FRAMES = False
# Testing: shorter side TEST_SHORT_SIDE, crops of TEST_CROP_SIZE.
_C.DATA.TEST_SHORT_SIDE = 256
at_least("DATA.TEST_SHORT_SIDE", 1)
_C.DATA.TEST_CROP_SIZE = 256
at_least("DATA.TEST_CROP_SIZE", 1)
# Normalisation (applied after scaling to [0, 1]).
_C.DATA.MEAN = [0.45, 0.45, 0.45]
between("DATA.MEAN", 0, 1)
_C.DATA.STD = [0.225, 0.225, 0.225]
positive("DATA.STD")
# Bad videos during training: resample up to MAX_RETRIES times (0: fail on the first);
# stop when the fraction of failed loads in an epoch exceeds MAX_FAIL_RATE (0..1; 1: never).
_C.DATA.MAX_RETRIES = 10
at_least("DATA.MAX_RETRIES", 0)
_C.DATA.MAX_FAIL_RATE = 0.05
between("DATA.MAX_FAIL_RATE", 0, 1)

# ----------------------------------------------------------------------------
# Data loader
# ----------------------------------------------------------------------------
_C.DATA_LOADER = CfgNode()
# Loader processes per training process (0: load in the main process). "auto": this
# process's share of the cores it may use (affinity, cgroup quota, divided by torchrun's
# processes on the node) minus one for the training loop, at most 16; logged at start.
_C.DATA_LOADER.NUM_WORKERS = "auto"
count_or_auto("DATA_LOADER.NUM_WORKERS", 0)
# Batches each worker loads ahead (PyTorch's prefetch_factor; only with workers).
_C.DATA_LOADER.PREFETCH_FACTOR = 2
at_least("DATA_LOADER.PREFETCH_FACTOR", 1)
# Page-locked host batches for the copy to a GPU (ignored on CPU).
_C.DATA_LOADER.PIN_MEMORY = True
_C.DATA_LOADER.PERSISTENT_WORKERS = True

# ----------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------
_C.TRAIN = CfgNode()
# Global batch size (all processes together).
_C.TRAIN.BATCH_SIZE = 64
at_least("TRAIN.BATCH_SIZE", 1)
# Validate every N epochs (0: no periodic validation); checkpoint every N epochs (>= 1).
_C.TRAIN.EVAL_PERIOD = 10
at_least("TRAIN.EVAL_PERIOD", 0)
_C.TRAIN.CHECKPOINT_PERIOD = 1
at_least("TRAIN.CHECKPOINT_PERIOD", 1)
# Also write a checkpoint every N iterations inside an epoch (0: only at epoch end).
_C.TRAIN.CHECKPOINT_ITERS = 0
at_least("TRAIN.CHECKPOINT_ITERS", 0)
# Step checkpoints kept (0: keep all).
_C.TRAIN.KEEP_LAST = 3
at_least("TRAIN.KEEP_LAST", 0)
_C.TRAIN.AUTO_RESUME = True
# Resume from this checkpoint of the run (a name in OUTPUT_DIR/checkpoints/ or its path), not the
# newest: e.g. the last healthy one a NonFiniteError names. Later checkpoints are moved to
# checkpoints/abandoned-<time>/ (not deleted). Applied once: a restart with the same setting
# continues from the newest checkpoint of the resumed branch.
_C.TRAIN.RESUME_FROM = ""
# Explicit checkpoint to initialise from (weights only) when not resuming.
_C.TRAIN.CHECKPOINT_FILE = ""
# "fp32" | "bf16" | "fp16"
_C.TRAIN.MIXED_PRECISION = "fp32"
# Clip the global gradient norm to this value (0: off).
_C.TRAIN.CLIP_GRAD_NORM = 0.0
at_least("TRAIN.CLIP_GRAD_NORM", 0)
# Accumulate gradients over this many steps (reach the paper's batch on few GPUs).
_C.TRAIN.ACCUM_STEPS = 1
at_least("TRAIN.ACCUM_STEPS", 1)
# Keep BatchNorm layers in eval mode while training (frozen statistics; affine
# parameters still learn): for tiny per-GPU batches and exact DDP-equivalence checks.
_C.TRAIN.FREEZE_BN = False
# Views used by the periodic validation during training (the final test uses TEST.*).
_C.TRAIN.VAL_ENSEMBLE_VIEWS = 1
at_least("TRAIN.VAL_ENSEMBLE_VIEWS", 1)
_C.TRAIN.VAL_SPATIAL_CROPS = 1
at_least("TRAIN.VAL_SPATIAL_CROPS", 1)

# ----------------------------------------------------------------------------
# Solver
# ----------------------------------------------------------------------------
_C.SOLVER = CfgNode()
_C.SOLVER.BASE_LR = 0.1
positive("SOLVER.BASE_LR")
# Batch size BASE_LR refers to; the LR scales linearly to TRAIN.BATCH_SIZE * ACCUM_STEPS.
_C.SOLVER.BASE_BATCH_SIZE = 64
at_least("SOLVER.BASE_BATCH_SIZE", 1)
_C.SOLVER.LR_POLICY = "steps"
# "steps": the LR is multiplied by GAMMA (0 < GAMMA <= 1) at each of these epochs.
_C.SOLVER.STEPS = [30, 60, 80]
at_least("SOLVER.STEPS", 1)
_C.SOLVER.GAMMA = 0.1
between("SOLVER.GAMMA", 0, 1, lo_open=True)
_C.SOLVER.MAX_EPOCH = 90
at_least("SOLVER.MAX_EPOCH", 1)
_C.SOLVER.MOMENTUM = 0.9
between("SOLVER.MOMENTUM", 0, 1, hi_open=True)
_C.SOLVER.NESTEROV = False
_C.SOLVER.WEIGHT_DECAY = 1e-4
at_least("SOLVER.WEIGHT_DECAY", 0)
# Linear warm-up from WARMUP_START_FACTOR x LR over WARMUP_EPOCHS (0: none).
_C.SOLVER.WARMUP_EPOCHS = 0.0
at_least("SOLVER.WARMUP_EPOCHS", 0)
_C.SOLVER.WARMUP_START_FACTOR = 0.1
between("SOLVER.WARMUP_START_FACTOR", 0, 1)

# ----------------------------------------------------------------------------
# Testing
# ----------------------------------------------------------------------------
_C.TEST = CfgNode()
_C.TEST.ENABLE = True
# Videos per batch at test time (each brings up to NUM_ENSEMBLE_VIEWS x NUM_SPATIAL_CROPS clips).
_C.TEST.BATCH_SIZE = 4
at_least("TEST.BATCH_SIZE", 1)
_C.TEST.NUM_ENSEMBLE_VIEWS = 10
at_least("TEST.NUM_ENSEMBLE_VIEWS", 1)
_C.TEST.NUM_SPATIAL_CROPS = 3
at_least("TEST.NUM_SPATIAL_CROPS", 1)
_C.TEST.CHECKPOINT_FILE = ""
# At most this many clips per forward pass at test time (0: a whole batch of
# TEST.BATCH_SIZE videos x views at once); bounds GPU memory for 30-view testing.
_C.TEST.CLIPS_PER_FORWARD = 0
at_least("TEST.CLIPS_PER_FORWARD", 0)
# Weights the test at the end of training uses: "final" (paper protocol) or "best"
# (the checkpoint with the best periodic-validation top-1; model selection on val).
_C.TEST.WEIGHTS = "final"
# Split tools/test_net.py evaluates: "test" or "val" (Kinetics reports on val).
_C.TEST.SPLIT = "test"

# ----------------------------------------------------------------------------
# Run
# ----------------------------------------------------------------------------
_C.OUTPUT_DIR = "./output"
_C.RNG_SEED = 0
between("RNG_SEED", 0, 2**64 - 1)  # what torch.manual_seed accepts
# "auto" (cuda when available), "cpu", "cuda".
_C.DEVICE = "auto"
# Layout of weights and clips: "auto" (channels_last_3d on CPU, where it is
# measured faster; default layout on GPU), "channels_last", "contiguous".
_C.MEMORY_FORMAT = "auto"
_C.LOG_PERIOD = 10
at_least("LOG_PERIOD", 1)
# CPU threads for torch in each process (0: PyTorch's default). On a busy or small
# machine 1-2 threads avoid oversubscription (dramatically slower otherwise).
_C.NUM_THREADS = 0
at_least("NUM_THREADS", 0)


def get_cfg() -> CfgNode:
    """A fresh copy of the defaults."""
    return _C.clone()
