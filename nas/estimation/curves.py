"""Learning-curve extrapolation (Domhan, Springenberg & Hutter 2015, "Speeding up automatic hyperparameter
optimization of deep neural networks by extrapolation of learning curves", IJCAI): the first epochs of a validation
curve are fitted by a weighted ensemble of parametric learning-curve models, whose value at the last epoch of the
schedule predicts the trial's final accuracy, with how sure that is; a trial unlikely to beat the best one so far can
stop (``nas.search.pruners``, ``search.pruner: curve``).

The models are the paper's eleven (vapor pressure, pow3, log log linear, Hill3, log power, pow4, MMF, exp4,
Janoschek, Weibull, ilog2), with the formulas and starting points of its reference code (pylearningcurvepredictor,
``curvefunctions.py``; log log linear has none there and starts from logx_linear's), over x = epoch 1, 2, ... Each is fitted by least squares (MINPACK's Levenberg-Marquardt, the
reference's first step), the epochs weighted by the reference's recency weights 10^(i/n) (its termination criterion
turns them on: a curve's last epochs say more about its end than its first; on the benchmark's 40 curves they bring
the error from 6 epochs from 0.029 to 0.017). The priors: a learning curve does not
fall (the reference checks the value at epoch 2 against the horizon; here every model must be non-decreasing at every
epoch up to the horizon) and ends in [0, 1]. Each parameter is fitted in the support these give it (an asymptote in
(0, 1), the signs that make the model rise: ``CurveModel.support``), and a fit that still breaks them (vapor pressure
and log log linear have no asymptote) is left out, as the reference leaves it out.

The prediction is a mixture, one component per model: a normal at the model's value at the horizon whose variance is
the noise plus the model's parameter uncertainty, cut to [0, 1] (the prior on the accuracy). ``mean`` is the ensemble's
value, ``prob_above`` the mixture's mass above the bar (the reference's ``posterior_prob_x_greater_than``, which adds
the noise to the curve's value as here).

Deviations from the paper, and why:

- **Laplace instead of MCMC.** The paper samples the ensemble's parameters, weights and noise with emcee (100
  walkers, 2,500 steps, 500 burn-in: about 10^5 evaluations of eleven models, seconds to minutes). A fit here must
  cost less than an epoch of the default digits search (0.2 to 0.7 s on one thread of an idle core). So each model's
  posterior is approximated by a normal around its fit, of covariance sigma^2 (J^T J)^-1 (J: the Jacobian of the
  weighted residuals, which MINPACK returns), carried to the horizon by the gradient of the model's value there; a
  model that the epochs do not pin down gets a spread as wide as the unit interval. A fit takes a median 23 ms (at
  most 107) against a median 0.40 s for a digits epoch, both measured by ``benchmarks/curve_extrapolation.py`` in one
  run on a 2-core machine shared with other work.
- **Weights by Bayesian model averaging**: each model's posterior probability by Schwarz's approximation of its
  evidence, exp(-BIC / 2), under a noise common to the models, instead of sampling the weights of the paper's
  combination. Its maximum-likelihood weights (non-negative least squares on the simplex) were measured too: on 40
  synthetic pow3 and exponential curves with noise 0.005, mean absolute error 0.039 / 0.027 / 0.018 from 3 / 4 / 6
  epochs against 0.032 / 0.022 / 0.016 here; on the benchmark's first 40 mnist5k curves 0.086 / 0.046 / 0.013 against
  0.079 / 0.049 / 0.017 (no clear winner; the averaging is the Bayesian one).
- **A noise floor** of 0.01 (``NOISE_FLOOR``): with 3 or 4 epochs the 3- and 4-parameter models go through every
  point and the residuals read no noise, while one accuracy on a validation set of a few hundred images varies by
  about 0.01 from sampling alone (0.008 for 750 images at 95 %, 0.013 for digits' 270).
- **A ridge** of 1e-3 on each unconstrained parameter's distance from the reference's start, so that a model with as
  many parameters as epochs has one fit, not a valley of them.
- The reference's ``cut_beginning`` (dropping a flat start) is not used.

The paper's networks trained at fixed or stepped learning rates; the search's schedule is a cosine decay, whose last
epochs gain what no parametric family foresees from the first ones. On 40 mnist5k curves of 12 epochs the prediction
from 3 epochs is 0.081 too low on average (mean absolute error 0.081, against 0.109 for "the last accuracy stays"),
from 6 epochs 0.017 too low (error 0.019 against 0.017), and it ranks the architectures no better than the last
accuracy does (``benchmarks/curve_extrapolation.py``). As a pruner it therefore needs a third to a half of the
schedule seen.

>>> mean, std = extrapolate([0.45, 0.66, 0.74, 0.78, 0.81], 12)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import leastsq
from scipy.stats import truncnorm

MIN_POINTS = 3  # the fewest epochs that pin down a 3-parameter curve and leave the 2-parameter ones a residual
NOISE_FLOOR = 0.01  # least standard deviation of one observed accuracy (see module doc)
_RIDGE = 1e-3  # pull of each parameter towards its starting value (module doc)


@dataclass(frozen=True)
class CurveModel:
    """One parametric family ``f(x, *theta)`` of the paper, its starting point (the reference code's defaults) and each
    parameter's support under the priors, as the map from an unconstrained value: ``free``, ``positive`` (exp),
    ``negative`` (-exp), ``unit`` (logistic: an asymptote in (0, 1)) or ``below`` (the first parameter minus exp: a
    start below the asymptote)."""

    name: str
    f: Callable[..., np.ndarray]
    start: tuple[float, ...]
    support: tuple[str, ...]

    def natural(self, u: Sequence[float]) -> np.ndarray:
        """The parameters ``theta`` of the unconstrained values ``u`` (plain floats: 2 to 4 of them, at every step of
        the fit, where numpy's per-call cost would dominate)."""
        theta: list[float] = []
        for v, kind in zip(map(float, u), self.support):
            if kind == "unit":
                theta.append(1.0 / (1.0 + math.exp(min(-v, 700.0))))  # exp(700) is still a float
            else:
                e = math.exp(min(v, 700.0))
                theta.append(v if kind == "free" else e if kind == "positive" else -e if kind == "negative"
                             else theta[0] - e)
        return np.array(theta)  # numpy scalars overflow to inf, where floats raise

    def unconstrained(self, theta: Sequence[float]) -> np.ndarray:
        """The inverse of ``natural``."""
        return np.array([t if kind == "free" else math.log(t) if kind == "positive" else math.log(-t)
                         if kind == "negative" else math.log(t / (1.0 - t)) if kind == "unit"
                         else math.log(theta[0] - t) for t, kind in zip(theta, self.support)])


def _vap(x, a, b, c):
    return np.exp(a + b / x + c * np.log(x))


def _pow3(x, c, a, alpha):
    return c - a * x ** (-alpha)


def _loglog_linear(x, a, b):
    return np.log(a * np.log(x) + b)


def _hill3(x, theta, eta, kappa):
    return theta * x**eta / (kappa**eta + x**eta)


def _log_power(x, a, b, c):
    return a / (1.0 + (x / np.exp(b)) ** c)


def _pow4(x, c, a, b, alpha):
    return c - (a * x + b) ** (-alpha)


def _mmf(x, alpha, beta, kappa, delta):
    return alpha - (alpha - beta) / (1.0 + (kappa * x) ** delta)


def _exp4(x, c, a, b, alpha):
    return c - np.exp(-a * x**alpha + b)


def _janoschek(x, a, beta, k, delta):
    return a - (a - beta) * np.exp(-k * x**delta)


def _weibull(x, alpha, beta, kappa, delta):
    return alpha - (alpha - beta) * np.exp(-((kappa * x) ** delta))


def _ilog2(x, c, a):
    return c - a / np.log(x + 1.0)


_FREE, _POS, _NEG, _UNIT, _BELOW = "free", "positive", "negative", "unit", "below"  # CurveModel.support
MODELS = (
    CurveModel("vap", _vap, (-0.622028, -0.47005, 0.042322), (_FREE, _NEG, _POS)),
    CurveModel("pow3", _pow3, (0.84, 0.52, 0.01), (_UNIT, _POS, _POS)),
    # The reference gives loglog_linear no starting point: these are its logx_linear's.
    CurveModel("loglog_linear", _loglog_linear, (0.378106, 0.046506), (_POS, _POS)),
    CurveModel("hill3", _hill3, (0.77232, 0.586449, 2.460843), (_UNIT, _POS, _POS)),
    CurveModel("log_power", _log_power, (0.77, 2.98, -0.51), (_UNIT, _FREE, _NEG)),
    CurveModel("pow4", _pow4, (0.8, 200.0, 0.0, 0.1), (_UNIT, _POS, _FREE, _POS)),
    CurveModel("mmf", _mmf, (0.7, 0.1, 0.01, 5.0), (_UNIT, _BELOW, _POS, _POS)),
    CurveModel("exp4", _exp4, (0.7, 0.8, -0.8, 0.3), (_UNIT, _POS, _FREE, _POS)),
    CurveModel("janoschek", _janoschek, (0.73, 0.07, 0.355, 0.46), (_UNIT, _BELOW, _POS, _POS)),
    CurveModel("weibull", _weibull, (0.7, 0.1, 0.01, 1.0), (_UNIT, _BELOW, _POS, _POS)),
    CurveModel("ilog2", _ilog2, (0.78, 0.43), (_UNIT, _POS)),
)


@dataclass(frozen=True)
class Extrapolation:
    """The ensemble's prediction of the accuracy after epoch ``horizon``: a mixture, weighted by ``weights``, of one
    normal per curve model centred on its value at the horizon (``finals``), of standard deviation ``spreads`` (the
    observation noise and the model's parameter uncertainty), each cut to [0, 1] as the paper's prior cuts the
    accuracy. ``models`` is empty when no model fits: the last observed accuracy is then the prediction."""

    horizon: int
    models: tuple[str, ...]
    finals: tuple[float, ...]
    spreads: tuple[float, ...]
    weights: tuple[float, ...]

    def _bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        mu, s = np.asarray(self.finals), np.asarray(self.spreads)
        return mu, s, (0.0 - mu) / s, (1.0 - mu) / s

    @property
    def mean(self) -> float:
        """The ensemble's value at the horizon, the paper's prediction (the mixture's own mean would sit below it
        wherever a wide spread meets the cut at 1)."""
        return float(np.dot(self.weights, self.finals))

    @property
    def std(self) -> float:
        """The mixture's standard deviation: each model's spread and their disagreement."""
        mu, s, a, b = self._bounds()
        means, variances = truncnorm.stats(a, b, loc=mu, scale=s, moments="mv")
        average = float(np.dot(self.weights, means))
        return math.sqrt(max(0.0, float(np.dot(self.weights, variances + means**2)) - average**2))

    def prob_above(self, y: float) -> float:
        """P(accuracy after epoch ``horizon`` > y)."""
        mu, s, a, b = self._bounds()
        return float(np.dot(self.weights, truncnorm.sf(y, a, b, loc=mu, scale=s)))


def _recency(n: int) -> np.ndarray:
    """The reference code's recency weights of the ``n`` observed epochs, 10^(i/n) (the last ten times the first),
    scaled to average 1."""
    w = 10.0 ** (np.arange(n) / n)
    return w / w.mean()


@dataclass(frozen=True)
class _Fit:
    values: np.ndarray  # the model at epochs 1 .. horizon
    gradient: np.ndarray  # of its value at the horizon, by the unconstrained parameters
    covariance: np.ndarray  # of the unconstrained parameters, per unit of noise variance


def _fit_one(model: CurveModel, y: np.ndarray, horizon: int) -> _Fit | None:
    """The model's (recency-weighted) least-squares fit to the curve ``y``, or None when the fit fails or breaks the
    paper's priors."""
    x = np.arange(1, len(y) + 1, dtype=float)
    scale = np.sqrt(_recency(len(y)))
    start = model.unconstrained(model.start)

    def residuals(u: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            r = scale * (model.f(x, *model.natural(u)) - y)
        return np.concatenate([np.where(np.isfinite(r), r, 1.0), _RIDGE * (u - start)])

    u, covariance, _, _, status = leastsq(residuals, start, full_output=True, maxfev=100 * (len(start) + 1))
    if status not in (1, 2, 3, 4) or covariance is None:
        return None
    epochs = np.arange(1, horizon + 1, dtype=float)
    with np.errstate(all="ignore"):
        values = model.f(epochs, *model.natural(u))
        if not np.all(np.isfinite(values)) or np.any(np.diff(values) < -1e-9) or not 0.0 <= values[-1] <= 1.0:
            return None  # the priors: a learning curve does not fall, and ends in [0, 1]
        steps = 1e-6 * np.maximum(1.0, np.abs(u))
        gradient = np.array([(model.f(epochs[-1], *model.natural(u + h)) - model.f(epochs[-1], *model.natural(u - h)))
                             / (2 * h[i]) for i, h in enumerate(np.diag(steps))])
    if not np.all(np.isfinite(gradient)):
        return None
    return _Fit(values, gradient, covariance)


def _weights(fitted: np.ndarray, y: np.ndarray, sizes: np.ndarray, sigma: float) -> np.ndarray:
    """Each model's posterior probability by Schwarz's approximation of its evidence, exp(-BIC / 2), from its
    (recency-weighted) residuals under the noise ``sigma``."""
    n = len(y)
    rss = np.sum(_recency(n) * (fitted - y) ** 2, axis=1)
    log_w = -rss / (2 * sigma**2) - 0.5 * sizes * math.log(n)
    w = np.exp(log_w - log_w.max())
    return w / w.sum()


def fit(curve: Sequence[float], horizon: int, noise_floor: float = NOISE_FLOOR) -> Extrapolation:
    """Fit the ensemble to ``curve`` (``curve[i]``: the accuracy, a fraction, after epoch i + 1 of a ``horizon``-epoch
    schedule).

    Raises:
        ValueError: fewer than ``MIN_POINTS`` epochs, an accuracy outside [0, 1], or ``horizon`` before the last epoch.
    """
    y = _check(curve, horizon)
    n, horizon = len(y), int(horizon)
    fits = {model: f for model in MODELS if (f := _fit_one(model, y, horizon)) is not None}
    if not fits:
        return Extrapolation(horizon, (), (float(y[-1]),), (noise_floor,), (1.0,))
    fitted = np.array([f.values[:n] for f in fits.values()])
    # The noise: the median model's residual, at least the floor (module doc).
    sigma = max(noise_floor, math.sqrt(float(np.median(np.average((fitted - y) ** 2, axis=1, weights=_recency(n))))))
    w = _weights(fitted, y, np.array([len(m.start) for m in fits]), sigma)
    # Laplace: the parameters' posterior is normal around the fit, of covariance sigma^2 (J^T J)^-1; the value at the
    # horizon moves with them by its gradient. Capped where it says nothing: an accuracy varies by 0.5 at most.
    variance = [min(0.25, sigma**2 * float(f.gradient @ f.covariance @ f.gradient)) for f in fits.values()]
    spreads = np.sqrt(sigma**2 + np.array(variance))
    return Extrapolation(horizon, tuple(m.name for m in fits), tuple(float(f.values[-1]) for f in fits.values()),
                         tuple(spreads.tolist()), tuple(w.tolist()))


def extrapolate(curve: Sequence[float], horizon: int) -> tuple[float, float]:
    """The predicted accuracy after epoch ``horizon``, mean and standard deviation (see ``fit``)."""
    result = fit(curve, horizon)
    return result.mean, result.std


def prob_above(curve: Sequence[float], horizon: int, y: float) -> float:
    """The probability that the accuracy after epoch ``horizon`` beats ``y`` (see ``fit``)."""
    return fit(curve, horizon).prob_above(y)


def _check(curve: Sequence[float], horizon: int) -> np.ndarray:
    y = np.asarray(curve, dtype=float)
    if y.ndim != 1 or len(y) < MIN_POINTS:
        raise ValueError(f"curve: needs the accuracies of at least {MIN_POINTS} epochs to fit, got {len(y)}")
    if not np.all(np.isfinite(y)) or y.min() < 0 or y.max() > 1:
        raise ValueError("curve: accuracies must be fractions in [0, 1]")
    if not float(horizon).is_integer() or horizon < len(y):
        raise ValueError(f"horizon: must be a whole number of epochs, at least the {len(y)} observed, got {horizon}")
    return y


__all__ = ["MIN_POINTS", "MODELS", "Extrapolation", "extrapolate", "fit", "prob_above"]
