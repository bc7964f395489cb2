"""Each finished run's per-epoch curves, written for TensorBoard as the run's records arrive."""

from __future__ import annotations

from pathlib import Path

from afos.errors import UserError
from afos.records.evaluation import Evaluation
from afos.reporting.tables import safe_name


class TensorBoardLog:
    """Writes each finished run's per-epoch curves under ``root/<function>/<task>/seed<k>`` for TensorBoard."""

    def __init__(self, root: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError("--tensorboard needs the tensorboard package (pip install tensorboard)") from None
        self.root, self.writer = Path(root), SummaryWriter

    def __call__(self, record: Evaluation) -> None:
        # the key's start keeps folders distinct where expressions sanitise alike; the budget tells rungs apart
        function = f"{safe_name(record.expression)}-{record.activation_key[:6]}"
        folder = self.root / function / record.task.replace("/", "-") / f"seed{record.seed}-{record.budget:g}ep"
        with self.writer(log_dir=str(folder)) as writer:
            for entry in record.history:
                for key in ("val_accuracy", "val_loss", "train_loss"):
                    value = getattr(entry, key)
                    if value is not None:
                        writer.add_scalar(key, value, entry.step)
            if record.test_accuracy is not None:
                writer.add_scalar("test_accuracy", record.test_accuracy, record.steps)
