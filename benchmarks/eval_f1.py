"""Cost of macro-F1 in evaluation: `Learner.evaluate` (loss, accuracy and F1 from a device-side confusion
matrix) against an accuracy-only pass over the same batches, interleaved in one process.

    python benchmarks/eval_f1.py [--device cpu|cuda] [--model resnet20] [--examples 2048] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from afos.training.config import TrainConfig
from afos.training.data.loader import DeviceLoader
from afos.training.learner import Learner
from afos.training.models.registry import activation_sites, build_model


@torch.no_grad()
def accuracy_only(learner: Learner, loader: DeviceLoader) -> tuple[float, float]:
    """The evaluation afos did before F1: summed loss and correct count, one read at the end."""
    learner.model.eval()
    loss = torch.zeros((), device=learner.device)
    correct = torch.zeros((), device=learner.device)
    count = 0
    for x, y in loader:
        logits = learner.model(x).float()
        loss += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
        count += len(y)
    learner.model.train()
    total_loss, total_correct = torch.stack([loss, correct]).tolist()
    return total_loss / count, total_correct / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--examples", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    x = torch.randint(0, 256, (args.examples, 3, 32, 32), dtype=torch.uint8)
    y = torch.randint(0, args.classes, (args.examples,))
    loader = DeviceLoader(x, y, batch_size=1024, mean=(0.5,) * 3, std=(0.25,) * 3, train=False, augment=False,
                          seed=0, device=device)
    model = build_model(args.model, nn.ReLU, num_classes=args.classes)
    learner = Learner(model, TrainConfig(amp=False, channels_last=False), activation_sites(model), device=device,
                      total_steps=1, warmup_steps=0)
    learner.evaluate(loader), accuracy_only(learner, loader)  # warm-up
    times: dict[str, list[float]] = {"accuracy only": [], "with macro-F1": []}
    for _ in range(args.repeats):
        for name, run in (("accuracy only", accuracy_only), ("with macro-F1", Learner.evaluate)):
            start = time.perf_counter()
            run(learner, loader)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["accuracy only"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<14} {median * 1000:8.1f} ms  {median / base:5.3f}x")


if __name__ == "__main__":
    main()
