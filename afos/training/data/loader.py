"""Device-resident batching: a split copied to the device once, shuffled, cropped and flipped there."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F


def _epoch_seed(seed: int, epoch: int) -> int:
    """Mix (seed, epoch) into one generator seed.

    Plain ``seed + epoch`` would make run seed 1's first epoch replay run seed 0's second epoch, correlating
    runs that statistics later treat as independent.
    """
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0] >> 1)


class DeviceLoader:
    """Iterate over one split in batches of (float32 normalised inputs, int64 labels) on ``device``.

    The split is copied to the device once (images stay uint8). Every ``iter()`` is one epoch: with
    ``train=True`` the order is a fresh permutation drawn from a generator seeded by (seed, epoch), so runs are
    reproducible (and resumable: set ``epoch`` to the number of epochs done). With ``augment=True``, image
    batches get a random crop from a zero-padded copy (padding ~ size/8: 4 pixels for 32x32, 1 for 8x8) and,
    if ``flip``, a random horizontal mirror, done as one gather per batch. Nothing in the loop reads values
    back to the host, so the accelerator never waits.
    ``drop_last`` defaults to ``train`` (when more than one batch exists), because a tiny last batch makes a
    noisy step and breaks BatchNorm with a single example.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        batch_size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        train: bool,
        augment: bool,
        seed: int,
        device: torch.device | str,
        channels_last: bool = False,
        drop_last: bool | None = None,
        flip: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
        self.device = torch.device(device)
        self.x = x.to(self.device)
        self.y = y.to(self.device, torch.int64)
        self.batch_size = batch_size
        self.train = train
        self.is_image = x.dim() == 4
        self.augment = augment and self.is_image
        self.flip = flip
        self.channels_last = channels_last and self.is_image
        self.drop_last = (train and len(x) > batch_size) if drop_last is None else drop_last
        self.seed = seed
        self.epoch = 0
        # (x / unit - mean) / std folded into one multiply-subtract per batch.
        unit = 255.0 if x.dtype == torch.uint8 else 1.0
        shape = (1, -1) + (1,) * (x.dim() - 2)
        std_t = torch.tensor(std, dtype=torch.float32).view(shape)
        self._scale = (1.0 / (unit * std_t)).to(self.device)
        self._shift = (torch.tensor(mean, dtype=torch.float32).view(shape) / std_t).to(self.device)
        if len(self) == 0:
            raise ValueError(f"drop_last with {len(x)} examples and batch_size {batch_size} yields no batch")

    def __len__(self) -> int:
        n, b = len(self.y), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator(device=self.device).manual_seed(_epoch_seed(self.seed, self.epoch))
        self.epoch += 1
        n = len(self.y)
        order = torch.randperm(n, generator=generator, device=self.device) if self.train else None
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            end = min(start + self.batch_size, n)
            if order is None:
                xb, yb = self.x[start:end], self.y[start:end]
            else:
                idx = order[start:end]
                xb, yb = self.x.index_select(0, idx), self.y.index_select(0, idx)
            if self.augment:
                xb = self._crop_flip(xb, generator)
            yield self._normalise(xb), yb

    def _normalise(self, xb: torch.Tensor) -> torch.Tensor:
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        out = xb.to(torch.float32).mul_(self._scale).sub_(self._shift)
        return out.contiguous(memory_format=memory_format)

    def _crop_flip(self, xb: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Random crop (and optional mirror) of a whole batch via one advanced-indexing gather."""
        b, c, h, w = xb.shape
        pad = max(1, round(min(h, w) / 8))
        padded = F.pad(xb, (pad, pad, pad, pad))
        offsets = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator, device=self.device)
        rows = offsets[:, :1] + torch.arange(h, device=self.device)
        cols = torch.arange(w, device=self.device).expand(b, w)
        if self.flip:
            mirror = torch.rand(b, 1, generator=generator, device=self.device) < 0.5
            cols = torch.where(mirror, cols.flip(1), cols)
        cols = offsets[:, 1:] + cols
        batch = torch.arange(b, device=self.device).view(b, 1, 1, 1)
        channel = torch.arange(c, device=self.device).view(1, c, 1, 1)
        return padded[batch, channel, rows.view(b, 1, h, 1), cols.view(b, 1, 1, w)]
