"""Learning-curve extrapolation (nas.estimation.curves) on synthetic curves of known form."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nas.estimation import curves
from nas.estimation.curves import MIN_POINTS, extrapolate, fit, prob_above

EPOCHS = np.arange(1, 13, dtype=float)
POW3 = 0.95 - 0.5 * EPOCHS**-0.8  # the paper's pow3 family: c - a * x^-alpha
EXPONENTIAL = 0.9 - 0.6 * np.exp(-0.4 * EPOCHS)  # Janoschek / Weibull with delta = 1


@pytest.mark.parametrize("truth", [POW3, EXPONENTIAL], ids=["pow3", "exponential"])
def test_the_first_epochs_of_a_curve_of_known_form_predict_its_final_value(truth):
    mean, std = extrapolate(truth[:6], 12)
    error = abs(mean - truth[-1])
    assert error < 2 * std  # the truth is inside the predicted band
    assert error < truth[-1] - truth[5]  # better than "it stays where it is"


def test_a_pow3_curve_is_extrapolated_closely_by_the_ensemble_that_holds_pow3():
    mean, _ = extrapolate(POW3[:6], 12)
    assert mean == pytest.approx(POW3[-1], abs=0.015)


def test_more_epochs_predict_better_and_more_surely():
    errors, stds = [], []
    for n in (3, 6, 10):
        mean, std = extrapolate(POW3[:n], 12)
        errors.append(abs(mean - POW3[-1]))
        stds.append(std)
    assert errors[2] < errors[0] and stds[2] < stds[0]


def test_a_better_curve_is_predicted_higher_and_the_probability_falls_with_the_bar():
    low, high = extrapolate(POW3[:5], 12)[0], extrapolate(POW3[:5] + 0.03, 12)[0]
    assert high > low + 0.02
    bars = np.linspace(0.5, 1.0, 11)
    probabilities = [prob_above(POW3[:5], 12, y) for y in bars]
    assert all(0.0 <= p <= 1.0 for p in probabilities)
    assert all(a >= b for a, b in itertools.pairwise(probabilities))
    assert probabilities[0] > 0.99 and probabilities[-1] < 0.01


def test_the_prediction_never_falls_below_the_fitted_curve_and_lies_in_the_unit_interval():
    result = fit(POW3[:4], 12)
    assert result.models and all(0.0 <= f <= 1.0 for f in result.finals)
    assert result.mean >= POW3[3] - 0.01  # every model is increasing: no drop after the last epoch seen


def test_even_a_flat_curve_has_a_positive_spread():
    mean, std = extrapolate([0.9] * 6, 12)
    assert mean == pytest.approx(0.9, abs=0.01) and std > 0


def test_a_falling_curve_breaks_the_increasing_prior_and_its_misfit_widens_the_prediction():
    result = fit([0.9, 0.7, 0.5, 0.3], 8)
    assert 0.3 <= result.mean <= 0.9 and result.std > 0.1  # flat at best, far from every point


def test_with_no_model_fitted_the_last_accuracy_is_the_prediction(monkeypatch):
    monkeypatch.setattr(curves, "MODELS", ())
    result = fit([0.5, 0.6, 0.7], 8)
    assert result.models == () and result.mean == 0.7 and result.std == pytest.approx(curves.NOISE_FLOOR)


def test_the_fit_is_deterministic():
    assert fit(POW3[:5], 12) == fit(POW3[:5], 12)


@pytest.mark.parametrize(("curve", "horizon", "message"), [
    ([0.5, 0.6], 12, f"at least {MIN_POINTS} epochs"),
    ([0.5, 0.6, 1.2], 12, "fractions in [0, 1]"),
    ([0.5, float("nan"), 0.7], 12, "fractions in [0, 1]"),
    ([0.5, 0.6, 0.7, 0.8], 3, "at least the 4 observed"),
    ([0.5, 0.6, 0.7], 12.5, "a whole number of epochs"),
])
def test_bad_input_is_refused_with_what_is_allowed(curve, horizon, message):
    with pytest.raises(ValueError, match="^(curve|horizon): ") as error:
        extrapolate(curve, horizon)
    assert message in str(error.value)
