"""Every configuration key vidrec knows, with its default.

One place, PySlowFast style: a YAML file overrides these, then ``KEY VALUE``
pairs from the command line override the file. A key that is not defined here
is an error, so typos never pass silently.
"""
from fvcore.common.config import CfgNode

_C = CfgNode()

# ----------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------
_C.MODEL = CfgNode()
# Registry name, see vidrec.models.list_models(): e.g. iresnet3d_50, resnet3d_50.
_C.MODEL.ARCH = "iresnet3d_50"
_C.MODEL.NUM_CLASSES = 400
# Dropout before the classifier (paper: 0.5 for video).
_C.MODEL.DROPOUT_RATE = 0.5
# Multiplies every channel width (stem and stages); < 1 for fast CPU models.
_C.MODEL.WIDTH_MULT = 1.0
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
_C.DATA.SAMPLING_RATE = 4
# Videos shorter than a clip: "loop" the indices or "repeat_last" frame.
_C.DATA.SHORT_VIDEO = "loop"
# Decoder backend: "decord" (PyAV fallback when DECODER_FALLBACK) or "pyav".
_C.DATA.DECODER = "decord"
_C.DATA.DECODER_FALLBACK = True
# Training spatial augmentation.
_C.DATA.TRAIN_JITTER_SCALES = [256, 320]
_C.DATA.TRAIN_CROP_SIZE = 224
_C.DATA.RANDOM_FLIP = True
# Label-aware flip: pairs of class ids swapped when a clip is flipped (SSv2).
_C.DATA.FLIP_SWAP_PAIRS = []
# Training crops: resize on the model's device (GPU) instead of in the loader
# workers, for when the CPU is the bottleneck. The workers then only decode and
# cut the source region; the crop drawn is the same.
_C.DATA.RESIZE_ON_DEVICE = False
# Testing: shorter side TEST_SHORT_SIDE, crops of TEST_CROP_SIZE.
_C.DATA.TEST_SHORT_SIDE = 256
_C.DATA.TEST_CROP_SIZE = 256
# Normalisation (applied after scaling to [0, 1]).
_C.DATA.MEAN = [0.45, 0.45, 0.45]
_C.DATA.STD = [0.225, 0.225, 0.225]
# Bad videos during training: resample up to MAX_RETRIES times; stop when the
# fraction of failed loads in an epoch exceeds MAX_FAIL_RATE.
_C.DATA.MAX_RETRIES = 10
_C.DATA.MAX_FAIL_RATE = 0.05

# ----------------------------------------------------------------------------
# Data loader
# ----------------------------------------------------------------------------
_C.DATA_LOADER = CfgNode()
_C.DATA_LOADER.NUM_WORKERS = 4
_C.DATA_LOADER.PIN_MEMORY = True
_C.DATA_LOADER.PERSISTENT_WORKERS = True

# ----------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------
_C.TRAIN = CfgNode()
_C.TRAIN.ENABLE = True
# Global batch size (all processes together).
_C.TRAIN.BATCH_SIZE = 64
_C.TRAIN.EVAL_PERIOD = 10
_C.TRAIN.CHECKPOINT_PERIOD = 1
# Also write a checkpoint every N iterations inside an epoch (0: only at epoch end).
_C.TRAIN.CHECKPOINT_ITERS = 0
_C.TRAIN.KEEP_LAST = 3
_C.TRAIN.AUTO_RESUME = True
# Explicit checkpoint to initialise from (weights only) when not resuming.
_C.TRAIN.CHECKPOINT_FILE = ""
# "fp32" | "bf16" | "fp16"
_C.TRAIN.MIXED_PRECISION = "fp32"
# Clip the global gradient norm to this value (0: off).
_C.TRAIN.CLIP_GRAD_NORM = 0.0
# Accumulate gradients over this many steps (reach the paper's batch on few GPUs).
_C.TRAIN.ACCUM_STEPS = 1
# Keep BatchNorm layers in eval mode while training (frozen statistics; affine
# parameters still learn): for tiny per-GPU batches and exact DDP-equivalence checks.
_C.TRAIN.FREEZE_BN = False
# Views used by the periodic validation during training (the final test uses TEST.*).
_C.TRAIN.VAL_ENSEMBLE_VIEWS = 1
_C.TRAIN.VAL_SPATIAL_CROPS = 1

# ----------------------------------------------------------------------------
# Solver
# ----------------------------------------------------------------------------
_C.SOLVER = CfgNode()
_C.SOLVER.BASE_LR = 0.1
# Batch size BASE_LR refers to; the LR scales linearly to TRAIN.BATCH_SIZE * ACCUM_STEPS.
_C.SOLVER.BASE_BATCH_SIZE = 64
_C.SOLVER.LR_POLICY = "steps"
_C.SOLVER.STEPS = [30, 60, 80]
_C.SOLVER.GAMMA = 0.1
_C.SOLVER.MAX_EPOCH = 90
_C.SOLVER.MOMENTUM = 0.9
_C.SOLVER.NESTEROV = False
_C.SOLVER.WEIGHT_DECAY = 1e-4
_C.SOLVER.WARMUP_EPOCHS = 0.0
_C.SOLVER.WARMUP_START_FACTOR = 0.1

# ----------------------------------------------------------------------------
# Testing
# ----------------------------------------------------------------------------
_C.TEST = CfgNode()
_C.TEST.ENABLE = True
# Videos per batch at test time (each brings up to NUM_ENSEMBLE_VIEWS x NUM_SPATIAL_CROPS clips).
_C.TEST.BATCH_SIZE = 4
_C.TEST.NUM_ENSEMBLE_VIEWS = 10
_C.TEST.NUM_SPATIAL_CROPS = 3
_C.TEST.CHECKPOINT_FILE = ""
# At most this many clips per forward pass at test time (0: a whole batch of
# TEST.BATCH_SIZE videos x views at once); bounds GPU memory for 30-view testing.
_C.TEST.CLIPS_PER_FORWARD = 0
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
# "auto" (cuda when available), "cpu", "cuda".
_C.DEVICE = "auto"
# Layout of weights and clips: "auto" (channels_last_3d on CPU, where it is
# measured faster; default layout on GPU), "channels_last", "contiguous".
_C.MEMORY_FORMAT = "auto"
_C.LOG_PERIOD = 10
# CPU threads for torch in each process (0: PyTorch's default). On a busy or small
# machine 1-2 threads avoid oversubscription (dramatically slower otherwise).
_C.NUM_THREADS = 0


def get_cfg() -> CfgNode:
    """A fresh copy of the defaults."""
    return _C.clone()
