"""TensorBoard logs: each finished run's per-epoch curves as the run's records arrive, and a search's
progress (best and median fitness, counts) after each generation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from afos.errors import UserError
from afos.records.evaluation import Evaluation
from afos.records.search import Generation
from afos.reporting.tables import safe_name

#: The folder under the log root that holds a search's own scalars, beside the runs' folders.
SEARCH_FOLDER = "_search"


class TensorBoardLog:
    """Writes each finished run's per-epoch curves under ``root/<function>/<task>/seed<k>`` and a search's
    per-generation scalars under ``root/_search`` for TensorBoard."""

    def __init__(self, root: str | Path, config: dict[str, Any] | None = None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError("--tensorboard needs the tensorboard package (pip install tensorboard)") from None
        self.root, self.writer, self.config = Path(root), SummaryWriter, config

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

    def generation(self, saved: Generation) -> None:
        """A search's generation (counted from 1, as the console counts): best and median fitness, its
        counts, and with the first generation the search's config as text."""
        step = saved.generation + 1
        with self.writer(log_dir=str(self.root / SEARCH_FOLDER)) as writer:
            if saved.generation == 0 and self.config is not None:
                writer.add_text("config", f"```\n{json.dumps(self.config, indent=2, sort_keys=True)}\n```", step)
            for name in ("best", "median", "mean"):
                value = getattr(saved.stats, name)
                if value is not None:
                    writer.add_scalar(f"fitness/{name}", value, step)
            for name, value in vars(saved.stats.counts).items():
                writer.add_scalar(f"candidates/{name}", value, step)
