"""Checks for the weight-initialization exercises: Xavier and He init, a variance prediction,
reading a histogram.

Used in notebooks/03_init.ipynb.
"""

from __future__ import annotations

import jax
import numpy as np

from .. import diagnostics as _diag
from ._core import Verdict, failed, run_student, verdict

# Shapes on which an init is sampled: fan_in != fan_out, so the formulas can be told apart
_SHAPES = ((400, 200), (100, 300))


def _formulas(fan_in, fan_out):
    return {
        "sqrt(1/fan_in) (LeCun's init)": (1.0 / fan_in) ** 0.5,
        "sqrt(2/fan_in) (He's init)": (2.0 / fan_in) ** 0.5,
        "sqrt(2/(fan_in+fan_out)) (Glorot's)": (2.0 / (fan_in + fan_out)) ** 0.5,
        "the variance 2/(fan_in+fan_out) instead of its square root": 2.0 / (fan_in + fan_out),
        "the variance 2/fan_in instead of its square root": 2.0 / fan_in,
        "sqrt(2/fan_out) (fan_out instead of fan_in)": (2.0 / fan_out) ** 0.5,
        "sqrt(1/(fan_in+fan_out))": (1.0 / (fan_in + fan_out)) ** 0.5,
    }


def _check_init(name, fn, target_name):
    worst, hint = 0.0, ""
    for i, (fan_in, fan_out) in enumerate(_SHAPES):
        w = run_student(name, fn, jax.random.PRNGKey(i), fan_in, fan_out)
        if w is None:
            return failed(name)
        w = np.asarray(w, np.float64)
        if w.shape != (fan_in, fan_out):
            return verdict(name, np.inf, hint=f"return shape (fan_in, fan_out) = "
                                              f"{(fan_in, fan_out)}, got {w.shape}")
        if not np.all(np.isfinite(w)):
            return verdict(name, np.inf, hint="the weights contain NaN or inf")
        w2 = np.asarray(fn(jax.random.PRNGKey(100 + i), fan_in, fan_out))
        if np.allclose(w, w2):
            return verdict(name, np.inf, hint="different keys give the same weights: draw them "
                                              "with jax.random using `key`")
        formulas = _formulas(fan_in, fan_out)
        target = formulas[target_name]
        std = float(w.std())
        err = abs(std - target) / target
        if abs(float(w.mean())) > 5 * target / np.sqrt(w.size) + 1e-12:
            err, hint = max(err, 1.0), "the weights should have mean 0"
        if err > worst:
            worst = err
            if not hint:
                guess = min(formulas, key=lambda k: abs(np.log(formulas[k] / max(std, 1e-30))))
                hint = (f"your std {std:.4f} looks like {guess}" if guess != target_name
                        else f"your std {std:.4f} is off the target {target:.4f}")
    # Sampling error of a std from >= 30,000 draws is below 1 %
    return verdict(name, worst, tol=0.03, close=0.1, what="relative error of the weight std",
                   hint=hint or "compare your std with the formula")


def check_xavier_init(fn) -> Verdict:
    """Check fn(key, fan_in, fan_out) -> W (fan_in, fan_out) with std sqrt(2/(fan_in+fan_out)).

    Normal or uniform draws both pass (Glorot's uniform init has the same variance).

    Used in notebooks/03_init.ipynb.
    """
    return _check_init("xavier init", fn, "sqrt(2/(fan_in+fan_out)) (Glorot's)")


def check_he_init(fn) -> Verdict:
    """Check fn(key, fan_in, fan_out) -> W of shape (fan_in, fan_out) with std sqrt(2/fan_in).

    Used in notebooks/03_init.ipynb.
    """
    return _check_init("he init", fn, "sqrt(2/fan_in) (He's init)")


# Exercise 2: a plain ReLU network, Gaussian weights of std 0.1, width 256, layer 10
PREDICT = {"activation": "relu", "init": "gaussian", "std": 0.1, "width": 256, "layer": 10}


def measured_std(x, y, seeds=(0, 1, 2, 3, 4)) -> float:
    """Seed-median std of z in layer PREDICT["layer"] of the exercise's network on (x, y).

    The layers are the first ones of the 30-layer network of the variance figure (same compile).

    Used in notebooks/03_init.ipynb.
    """
    p = PREDICT
    stds = [_diag.layer_stats(x, y, activation=p["activation"], init=p["init"], std=p["std"],
                              depth=p["layer"], max_depth=30, width=p["width"],
                              key=jax.random.PRNGKey(s))["z_std"][-1] for s in seeds]
    return float(np.median(stds))


def check_std_prediction(prediction, x, y) -> Verdict:
    """Compare a predicted std of z in layer 10 (see PREDICT) with the measured seed median.

    PASS within 15 %, CLOSE within 40 % (finite width makes the measured value wander).

    Used in notebooks/03_init.ipynb.
    """
    name = "std prediction"
    try:
        prediction = float(prediction)
    except (TypeError, ValueError):
        print(f"{name} | `prediction` must be a number, got {prediction!r} | FAIL")
        return failed(name)
    if not np.isfinite(prediction) or prediction <= 0:
        return verdict(name, np.inf, what="relative error", hint="a std is a positive number")
    measured = measured_std(x, y)
    err = abs(prediction - measured) / measured
    if prediction < measured / 2:
        hint = "too small: with ReLU each layer multiplies Var[z] by (1/2) * width * std^2 = 1.28"
    elif prediction > 2 * measured:
        hint = "too large: did you forget the factor 1/2 of the ReLU, or take std instead of var?"
    else:
        hint = "count the layers: layer 1 gets std^2 * mean ||x||^2, then 9 factors follow"
    return verdict(name, err, tol=0.15, close=0.4, what=f"measured {measured:.3g}, relative error",
                   hint=hint)


def check_histogram_reading(answer) -> Verdict:
    """Check {letter: "xavier" | "small" | "large"} against the histograms of exercise 3.

    Used in notebooks/03_init.ipynb.
    """
    name = "histogram reading"
    truth = {k: ("xavier" if init == "xavier" else "small" if std < 0.1 else "large")
             for k, (init, std) in _diag.QUIZ.items()}
    if not isinstance(answer, dict) or set(answer) != set(truth):
        print(f"{name} | `answer` must be a dict with keys {sorted(truth)} | FAIL")
        return failed(name)
    bad = sorted(k for k in truth if str(answer[k]).strip().lower() != truth[k])
    hints = {"small": "a spike at 0 in a deep layer means every layer shrank the signal",
             "large": "piles at the edges mean the tanh units sit in their flat parts",
             "xavier": "a broad, smooth bump without piles is what a well-scaled init gives"}
    hint = "; ".join(f"{k}: {hints[truth[k]]}" for k in bad)
    return verdict(name, float(len(bad)), tol=0, close=0, what="wrong labels", hint=hint)
