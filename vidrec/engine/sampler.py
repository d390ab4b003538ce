"""Samplers whose output depends only on (seed, epoch, position), not on the process layout.

Training: one permutation per epoch, split across ranks by stride so that the
global batch k is the same set of videos for any world size; every sample
carries its own seed so augmentation is reproducible whichever worker loads it.
``start`` lets a resumed run skip exactly the samples already consumed.

Evaluation: every video once, padded (by repeating) to a multiple of the world
size; the evaluator drops the padding duplicates after gathering.
"""
from __future__ import annotations

from typing import Iterator, Tuple

import torch
from torch.utils.data import Sampler

from ..utils.rng import mix_seed


class TrainSampler(Sampler):
    """Yields ``(index, sample_seed)`` for this rank, ``iters_per_epoch * per_rank_batch`` per epoch.

    Only ``iters * global_batch`` samples of the permutation are used (a global
    drop_last), so the number of steps per epoch does not depend on world size.
    """

    def __init__(self, num_samples: int, global_batch: int, seed: int, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True):
        if global_batch % world_size:
            raise ValueError(f"global batch {global_batch} is not divisible by {world_size} processes")
        if num_samples < global_batch:
            raise ValueError(
                f"the training set has {num_samples} videos, fewer than one global batch ({global_batch}); "
                "lower TRAIN.BATCH_SIZE / TRAIN.ACCUM_STEPS")
        self.num_samples = num_samples
        self.global_batch = global_batch
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.shuffle = shuffle
        self.epoch = 0
        self.start = 0  # per-rank samples to skip in the current epoch

    @property
    def iters_per_epoch(self) -> int:
        return self.num_samples // self.global_batch

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's permutation (DistributedSampler semantics); resets ``start``."""
        self.epoch = epoch
        self.start = 0

    def set_start(self, per_rank_position: int) -> None:
        self.start = per_rank_position

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "start": self.start, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.start = int(state["epoch"]), int(state["start"])

    def permutation(self) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.num_samples)
        g = torch.Generator()
        g.manual_seed(mix_seed(self.seed, self.epoch, 0x5A17))
        return torch.randperm(self.num_samples, generator=g)

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        perm = self.permutation().tolist()
        used = self.iters_per_epoch * self.global_batch
        for global_pos in range(self.rank + self.start * self.world_size, used, self.world_size):
            yield perm[global_pos], mix_seed(self.seed, self.epoch, global_pos)

    def __len__(self) -> int:
        return self.iters_per_epoch * self.global_batch // self.world_size - self.start


class EvalSampler(Sampler):
    """Every index once across ranks, padded with repeats to a multiple of the world size."""

    def __init__(self, num_samples: int, rank: int = 0, world_size: int = 1):
        self.num_samples = num_samples
        self.rank = rank
        self.world_size = world_size
        self.per_rank = -(-num_samples // world_size) if num_samples else 0

    def __iter__(self) -> Iterator[int]:
        total = self.per_rank * self.world_size
        idx = [i % self.num_samples for i in range(total)] if self.num_samples else []
        return iter(idx[self.rank:total:self.world_size])

    def __len__(self) -> int:
        return self.per_rank
