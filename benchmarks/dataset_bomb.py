"""Peak memory of reading broken MNIST .gz files: a gzip bomb and a forged header must be refused before the
reader allocates more than the dataset's declared size.

    python benchmarks/dataset_bomb.py [--inflated-mib 1024]

Builds, in a temporary folder, a valid tiny MNIST whose t10k images file is a bomb (a header for 4 images of
3 x 2 pixels followed by N MiB of zeros, about 1 MB compressed per GiB), and a copy whose training images
header declares 4e9 x 28 x 28. Each is loaded by `afos.load_dataset` in a fresh process, which prints
its peak resident memory growth (ru_maxrss after minus before the load) and the error it raised. To measure
another checkout, run from outside any checkout (``python -c`` puts the working folder first on sys.path):
``cd /tmp && PYTHONPATH=CHECKOUT python CHECKOUT/benchmarks/dataset_bomb.py``.
"""

from __future__ import annotations

import argparse
import gzip
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

_PROBE = """
import resource, sys
from afos.training.data.registry import load_dataset
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_dataset("mnist", sys.argv[1], download=False)
    outcome = "loaded"
except Exception as error:
    outcome = f"{type(error).__name__}: {str(error)[:90]}"
print(f"{(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024:.0f} MiB  {outcome}")
"""


def _header(shape: tuple[int, ...]) -> bytes:
    return bytes([0, 0, 8, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


def _mnist(root: Path, images_header: bytes, t10k_tail_mib: int) -> Path:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    shapes = {"train-images-idx3-ubyte": (20, 3, 2), "train-labels-idx1-ubyte": (20,),
              "t10k-images-idx3-ubyte": (4, 3, 2), "t10k-labels-idx1-ubyte": (4,)}
    zeros = bytes(1 << 20)
    for name in _FILES:
        shape = shapes[name]
        with gzip.open(raw / f"{name}.gz", "wb", compresslevel=9) as f:
            size = 1
            for d in shape:
                size *= d
            if name == "train-images-idx3-ubyte":
                f.write(images_header + bytes(size))
            else:
                f.write(_header(shape) + bytes(size))
            if name == "t10k-images-idx3-ubyte":
                for _ in range(t10k_tail_mib):
                    f.write(zeros)
    return raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inflated-mib", type=int, default=1024, help="zeros after the bomb's valid data")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cases = {
            f"bomb ({args.inflated_mib} MiB of zeros after 24 bytes)": _mnist(
                Path(tmp) / "bomb", _header((20, 3, 2)), args.inflated_mib),
            "forged header (4e9 x 28 x 28)": _mnist(Path(tmp) / "forged", _header((4_000_000_000, 28, 28)), 0),
        }
        for label, raw in cases.items():
            size = sum(p.stat().st_size for p in raw.iterdir())
            result = subprocess.run([sys.executable, "-c", _PROBE, str(raw.parent.parent)], capture_output=True,
                                    text=True, check=True)
            print(f"{label}: files {size / 1e6:.2f} MB, peak RSS growth {result.stdout.strip()}")


if __name__ == "__main__":
    main()
