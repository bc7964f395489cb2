"""Datasets: load once into CPU tensors, then stream batches from the accelerator.

Fitness evaluations are short training runs, so input handling must cost next to nothing: every split is kept
as one tensor (images as uint8, 4x smaller than float32), moved to the device once by
:class:`~afos.training.data.loader.DeviceLoader`, and shuffled, augmented and normalised there in whole
batches. No ``torch.utils.data.DataLoader``, no worker processes, no per-example Python.

* :mod:`~afos.training.data.registry`: the datasets afos knows, where their files are, :func:`load_dataset`;
* :mod:`~afos.training.data.readers`: readers of the official files (idx, pickled CIFAR batches), written
  for untrusted input;
* :mod:`~afos.training.data.own`: the user's own data (an image folder, a CSV table);
* :mod:`~afos.training.data.loader`: device-resident batching and augmentation.

Files are read from torchvision's folder layout under a data root, by the readers here, so that nothing
needs torchvision, a network connection or a manual decompression step; torchvision is imported, lazily,
only to download missing files."""

from __future__ import annotations
