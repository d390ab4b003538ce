"""Video data pipeline: decoding, clip sampling, transforms, datasets, checks."""
from .datasets import VideoDataset, build_dataset, check_failure_rate, collate_test, collate_train
from .decoders import VideoError, count_frames, probe, read_frames
from .lists import ListError
from .synthetic import make_synthetic_dataset
from .video_check import check_videos

__all__ = ["build_dataset", "collate_test", "collate_train", "VideoError", "check_failure_rate", "VideoDataset", "read_frames",
           "probe", "count_frames", "ListError", "make_synthetic_dataset", "check_videos"]
