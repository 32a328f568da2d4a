"""Learning-curve diagnosis (se_lib.report.diagnosis) on fixed synthetic curves with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from se_lib.report.diagnosis import ACTIONS, LABELS, diagnose, diagnose_curves

EPOCHS = np.arange(12)
RNG = np.random.default_rng(0)
JITTER = 0.02 * RNG.standard_normal((2, EPOCHS.size))

CURVES = {
    # (train loss, validation loss): negative SI-SDR in dB, as the models log it
    "flat": (-1.0 + JITTER[0], -1.2 + JITTER[1]),
    "rising": (-2.0 + 0.8 * EPOCHS + JITTER[0], -1.5 + 0.9 * EPOCHS + JITTER[1]),
    "train-down/val-up": (-10 * (1 - np.exp(-EPOCHS / 3)) + JITTER[0], -6 + 0.15 * (EPOCHS - 4) ** 2 + JITTER[1]),
    "falling": (-10 * (1 - np.exp(-EPOCHS / 3)) + JITTER[0], -8 * (1 - np.exp(-EPOCHS / 4)) + JITTER[1]),
}
EXPECTED = {
    "flat": "not learning",
    "rising": "diverging",
    "train-down/val-up": "overfitting",
    "falling": "converging",
}


@pytest.mark.parametrize("name", list(CURVES))
def test_synthetic_curves_are_labelled(name):
    train, val = CURVES[name]
    d = diagnose(train, val)
    assert d.label == EXPECTED[name], d
    assert d.action == ACTIONS[d.label] and d.epochs == EPOCHS.size


def test_actions_are_the_usual_ones():
    assert "raise the learning rate" in ACTIONS["not learning"] and "normalisation" in ACTIONS["not learning"]
    assert "tenfold" in ACTIONS["diverging"] and "clip gradients" in ACTIONS["diverging"]
    assert "regularisation" in ACTIONS["overfitting"] and "stop earlier" in ACTIONS["overfitting"]
    assert set(ACTIONS) == set(LABELS)


def test_edge_cases():
    assert diagnose([1.0, float("nan"), 2.0], [1.0, 1.0, 1.0]).label == "diverging"
    assert diagnose([-1.0, -2.0], [-1.0, -2.0]).label == "undetermined"  # a 2-epoch smoke run
    assert diagnose(CURVES["falling"][0]).label == "converging"  # no validation
    # the overfitting rule needs the training loss to keep falling: a plateau with val rising is divergence
    assert diagnose(np.full(12, -5.0), -6 + 0.3 * EPOCHS).label == "diverging"


def test_diagnose_curves_table():
    rows = []
    for i, (name, (train, val)) in enumerate(CURVES.items()):
        for metric, values in (("train_loss_epoch", train), ("val_loss_epoch", val)):
            rows += [
                {"model": name, "run_id": f"r{i}", "metric": metric, "step": 10 * e, "epoch": e, "value": v}
                for e, v in zip(EPOCHS, values, strict=True)
            ]
    table = diagnose_curves(pd.DataFrame(rows).sample(frac=1.0, random_state=1))  # order must not matter
    assert dict(zip(table["model"], table["diagnosis"], strict=True)) == EXPECTED
    assert list(table.columns) == ["model", "run_id", "diagnosis", "action", "reason", "epochs"]
