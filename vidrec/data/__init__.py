"""Video data pipeline: reading (one layer, several backends), clip sampling, transforms, datasets, checks,
and preparation (re-encoded copies for fast training)."""
from .datasets import (VideoDataset, build_dataset, check_failure_rate, collate_test, collate_train,
                       load_test_union, load_test_views)
from .decoders import (FrameStream, VideoError, VideoIndex, count_frames, index_video, probe, read_frames,
                       read_frames_at)
from .lists import ListError
from .prepare import Settings as PrepareSettings, prepare_one, prepare_videos
from .synthetic import make_synthetic_dataset
from .video_check import check_videos

__all__ = ["build_dataset", "collate_test", "collate_train", "VideoError", "check_failure_rate", "VideoDataset",
           "load_test_views", "load_test_union", "read_frames", "read_frames_at", "FrameStream", "VideoIndex", "index_video",
           "probe", "count_frames", "ListError", "make_synthetic_dataset", "check_videos",
           "PrepareSettings", "prepare_one", "prepare_videos"]
