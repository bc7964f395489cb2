"""Macro-F1 beside accuracy: computed on the device, equal to scikit-learn's, carried into every record."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import f1_score
from torch import nn

from afos.activation.spec import ActivationSpec
from afos.evaluation import EvalRequest, record_of
from afos.storage.store import RunStore
from afos.training.config import TrainConfig
from afos.training.data.loader import DeviceLoader
from afos.training.data.registry import load_dataset
from afos.training.fitness import run_fitness
from afos.training.learner import Learner, macro_f1
from afos.training.models.registry import activation_sites, build_model


def test_macro_f1_matches_scikit_learn_on_a_partly_trained_model() -> None:
    """A model trained for a few steps on digits predicts some classes well and others never: the case
    where macro-F1 and accuracy differ and where leaving out or zeroing a class matters."""
    ds = load_dataset("digits")
    torch.manual_seed(0)
    model = build_model("mlp", nn.ReLU, num_classes=10, in_channels=1, image_size=8)
    config = TrainConfig(lr=0.01)
    learner = Learner(model, config, activation_sites(model), device=torch.device("cpu"), total_steps=5,
                      warmup_steps=0)
    train = DeviceLoader(ds.train_x, ds.train_y, batch_size=64, mean=ds.mean, std=ds.std, train=True,
                         augment=False, seed=0, device="cpu")
    for (x, y), _ in zip(train, range(5)):
        learner.step(x, y)
    test = DeviceLoader(ds.test_x, ds.test_y, batch_size=100, mean=ds.mean, std=ds.std, train=False,
                        augment=False, seed=0, device="cpu")
    _, accuracy, f1 = learner.evaluate(test)
    model.eval()
    with torch.no_grad():
        predictions = torch.cat([model(x).argmax(1) for x, _ in test])
    expected = f1_score(ds.test_y.numpy(), predictions.numpy(), average="macro")
    assert f1 == pytest.approx(expected, abs=1e-12)
    assert accuracy == pytest.approx(float((predictions == ds.test_y).double().mean()), abs=1e-12)
    assert f1 != pytest.approx(accuracy)


def test_macro_f1_leaves_out_classes_neither_present_nor_predicted() -> None:
    y_true, y_pred = [0, 0, 1, 1, 3], [0, 1, 1, 1, 0]
    confusion = torch.zeros(5, 5, dtype=torch.float64)
    for t, p in zip(y_true, y_pred):
        confusion[t, p] += 1
    assert float(macro_f1(confusion)) == pytest.approx(f1_score(y_true, y_pred, average="macro"), abs=1e-12)


def test_every_record_carries_f1_through_the_store(tmp_path) -> None:
    config = TrainConfig(epochs=2, device="cpu")
    result = run_fitness(nn.ReLU, config)
    assert 0.0 < result.val_f1 <= 1.0 and 0.0 < result.test_f1 <= 1.0
    assert all(entry.val_f1 is not None for entry in result.history)
    request = EvalRequest.make(ActivationSpec("relu"), config, budget=2, seed=0, label="relu")
    with RunStore(tmp_path / "afos.db") as store:
        store.add_evaluation(record_of(request, result))
        (stored,) = store.evaluations()
    assert stored.metric("val_f1") == result.val_f1 and stored.metric("test_f1") == result.test_f1
