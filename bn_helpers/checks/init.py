"""Checks for the weight-initialization exercises: Xavier and He init, a variance prediction,
reading a histogram.

Every check recognizes the usual mistakes of its exercise by computing what each one returns and
names it in the hint; the tolerances separate the right answer from every listed mistake.

Used in notebooks/03_init.ipynb.
"""

from __future__ import annotations

import jax
import numpy as np

from .. import init as _init
from ..mlp import MLP
from ._core import (CheckFailed, Verdict, as_array, as_number, check, grading_mode, student,
                    verdict)

# --- Exercise 1: Xavier and He init ------------------------------------------------------

# Shapes on which an init is sampled: fan_in != fan_out, so the formulas can be told apart
_SHAPES = ((400, 200), (100, 300))
_HIDDEN_SHAPES = ((50, 500), (300, 30))
_XAVIER = "sqrt(2/(fan_in+fan_out)) (Glorot's)"
_HE = "sqrt(2/fan_in) (He's init)"


def init_formulas(fan_in, fan_out, target: str) -> dict:
    """{description: std} for the right init (`target`) and the usual mistakes of exercise 1."""
    right = {_XAVIER: (2.0 / (fan_in + fan_out)) ** 0.5, _HE: (2.0 / fan_in) ** 0.5}
    out = {
        _XAVIER: right[_XAVIER],
        _HE: right[_HE],
        "sqrt(1/fan_in) (LeCun's init)": (1.0 / fan_in) ** 0.5,
        "the variance 2/(fan_in+fan_out) instead of its square root": 2.0 / (fan_in + fan_out),
        "the variance 2/fan_in instead of its square root": 2.0 / fan_in,
        "sqrt(1/(fan_in+fan_out)) (the factor 2 is missing)": (1.0 / (fan_in + fan_out)) ** 0.5,
    }
    if target == _HE:
        out["sqrt(2/fan_out) (fan_out instead of fan_in)"] = (2.0 / fan_out) ** 0.5
    else:
        out["sqrt(2/fan_out) (fan_out only)"] = (2.0 / fan_out) ** 0.5
    # uniform(-a, a) has std a/sqrt(3): using the std as the limit a is a classic slip
    out["uniform(-a, a) with a = the std (a uniform's std is a/sqrt(3); use a = sqrt(3) * std)"] = (
        right[target] / 3 ** 0.5)
    return out


def _check_init(name, fn, target):
    shapes = _SHAPES + (_HIDDEN_SHAPES if grading_mode() else ())
    stds = []
    for i, (fan_in, fan_out) in enumerate(shapes):
        w = as_array(student(fn, jax.random.PRNGKey(i), fan_in, fan_out), (fan_in, fan_out),
                     what="W")
        w2 = as_array(student(fn, jax.random.PRNGKey(100 + i), fan_in, fan_out),
                      (fan_in, fan_out), what="W")
        if np.allclose(w, w2):
            raise CheckFailed("different keys give the same weights",
                              "draw the weights with jax.random using `key`")
        std = float(w.std())
        if std == 0:
            raise CheckFailed("all weights are equal (std 0)", "draw random weights")
        if abs(float(w.mean())) > 0.2 * std:
            return verdict(name, abs(float(w.mean())) / std, tol=0.03, close=0.1,
                           what="|mean| / std of W",
                           hint="the weights should have mean 0 (uniform(0, a) is not centred)")
        stds.append(std)
    # relative error of the student's std against each formula, the worst over the shapes
    table = [init_formulas(fi, fo, target) for fi, fo in shapes]
    errs = {k: max(abs(s - t[k]) / t[k] for s, t in zip(stds, table, strict=True))
            for k in table[0]}
    err = errs[target]
    guess = min(errs, key=errs.get)
    if guess != target and errs[guess] < 0.03:
        hint = f"your std {stds[0]:.4f} (fan_in, fan_out = {shapes[0]}) matches {guess}"
    else:
        fi, fo = shapes[0]
        hint = (f"your std {stds[0]:.4f} for fan_in, fan_out = {fi}, {fo}; the target "
                f"{target.split(' (')[0]} is {table[0][target]:.4f}")
    # Sampling error of a std from >= 15,000 draws is below 1 %; the nearest mistake is >= 10 % off
    return verdict(name, err, tol=0.03, close=0.06, what="relative error of the weight std",
                   hint=hint)


@check("xavier init")
def check_xavier_init(fn) -> Verdict:
    """Check fn(key, fan_in, fan_out) -> W (fan_in, fan_out) with std sqrt(2/(fan_in+fan_out)).

    Normal or uniform draws both pass (Glorot's uniform init has the same variance).
    Names the variance instead of the std, He's and LeCun's formulas, fan_out, a missing 2
    and a uniform limit set to the std.

    Used in notebooks/03_init.ipynb.
    """
    return _check_init("xavier init", fn, _XAVIER)


@check("he init")
def check_he_init(fn) -> Verdict:
    """Check fn(key, fan_in, fan_out) -> W of shape (fan_in, fan_out) with std sqrt(2/fan_in).

    Names the variance instead of the std, fan_out instead of fan_in, LeCun's and Glorot's
    formulas and a uniform limit set to the std.

    Used in notebooks/03_init.ipynb.
    """
    return _check_init("he init", fn, _HE)


# --- Exercise 2: predict the std of z in a deep ReLU network -----------------------------

# The visible network of exercise 2 (not one of the figures): plain ReLU, Gaussian weights of
# std 0.2 in every layer (the first included), width 128, hidden layer 6
PREDICT = {"std": 0.2, "width": 128, "layer": 6}
# (mean ||x||^2, std, width, layer): in every case the per-layer factor (1/2) * width * std^2
# and the first layer's std^2 * mean ||x||^2 are far from 1, so an off-by-one in the depth and a
# start from variance 1 are both >= 25 % off (tests/test_checks_init.py)
_PREDICT_CASES = ((20.0, 0.15, 200, 4), (40.0, 0.3, 64, 8), (200.0, 0.1, 100, 5))
_PREDICT_HIDDEN = ((30.0, 0.25, 96, 7), (120.0, 0.05, 2000, 3), (20.0, 0.4, 40, 9))


def reference_std(mean_sq_norm, std, width, layer) -> float:
    """std of z in hidden layer `layer` predicted by He's argument (reference of exercise 2).

    Layer 1: Var[z] = std^2 * mean ||x||^2; every later layer multiplies it by
    (1/2) * width * std^2.

    Used in notebooks/03_init.ipynb.
    """
    return float(np.sqrt(std ** 2 * mean_sq_norm * (0.5 * width * std ** 2) ** (layer - 1)))


def predict_mistakes(q, s, n, layer) -> dict:
    """{description: value} the usual wrong answers of exercise 2 return."""
    g = 0.5 * n * s ** 2
    first = s ** 2 * q
    return {
        "off by one layer: layer 1 already gets its own s^2, so `layer - 1` factors follow":
            np.sqrt(first * g ** layer),
        "off by one layer the other way: `layer - 1` factors follow layer 1":
            np.sqrt(first * g ** (layer - 2)),
        "starting from variance 1: layer 1 has Var[z] = std^2 * mean ||x||^2, not 1":
            np.sqrt(g ** (layer - 1)),
        "starting from std^2 * 784 (pixels are not unit-variance): use mean ||x||^2":
            np.sqrt(s ** 2 * 784 * g ** (layer - 1)),
        "the ReLU's factor 1/2 is missing (E[relu(z)^2] = Var[z] / 2)":
            np.sqrt(first * (2 * g) ** (layer - 1)),
        "std instead of std^2 in the per-layer factor (1/2) * width * std^2":
            np.sqrt(first * (0.5 * n * s) ** (layer - 1)),
        "this is the variance: take its square root": first * g ** (layer - 1),
    }


@check("std prediction")
def check_std_prediction(fn) -> Verdict:
    """Check fn(mean_sq_norm, std, width, layer) -> predicted std of z in that hidden layer.

    Tried on the visible network (PREDICT, with mean ||x||^2 = 90) and other parameter values
    (more under the grader); PASS within 1e-3 of He's argument, CLOSE within 2 %, and each
    usual mistake (off-by-one depth, start from variance 1, missing 1/2, ...) is named.

    Used in notebooks/03_init.ipynb.
    """
    name = "std prediction"
    p = PREDICT
    cases = ((90.0, p["std"], p["width"], p["layer"]),) + _PREDICT_CASES
    if grading_mode():
        cases += _PREDICT_HIDDEN
    got, want, mistakes = [], [], []
    for q, s, n, layer in cases:
        value = as_number(student(fn, q, s, n, layer), what=f"predict_std({q:g}, {s}, {n}, {layer})")
        if value <= 0:
            raise CheckFailed(f"predict_std({q:g}, {s}, {n}, {layer}) = {value:.3g}",
                              "a std is a positive number")
        got.append(value)
        want.append(reference_std(q, s, n, layer))
        mistakes.append(predict_mistakes(q, s, n, layer))
    got, want = np.array(got), np.array(want)
    err = float(np.max(np.abs(got - want) / want))
    hint = "compare with the argument above: layer 1 from the pixels, then one factor per layer"
    for key in mistakes[0]:
        m = np.array([d[key] for d in mistakes])
        if np.max(np.abs(got - m) / m) < 1e-3:
            hint = key
            break
    else:
        if np.allclose(got, got[0], rtol=1e-6):
            hint = "the same value for every network: use the arguments, not a number"
    return verdict(name, err, tol=1e-3, close=0.02, what="max relative error over "
                   f"{len(cases)} networks", hint=hint)


def exercise_net(n_in: int = 784) -> MLP:
    """The network of exercise 2: plain ReLU MLP, PREDICT["layer"] hidden layers of
    PREDICT["width"] units, every weight Gaussian with std PREDICT["std"].

    Used in notebooks/03_init.ipynb.
    """
    p = PREDICT
    return MLP((n_in,) + (p["width"],) * p["layer"] + (10,), activation="relu", init="gaussian",
               init_std=p["std"])


def measured_std(x, y, seeds=(0, 1, 2, 3, 4)) -> np.ndarray:
    """std of z in the last hidden layer of `exercise_net`, one per seed (`bnh.init.init_stats`).

    Used in notebooks/03_init.ipynb.
    """
    return _init.init_stats(exercise_net(x.shape[1]), x, y, seeds=seeds)["z_std"][:, -1]


# --- Exercise 3: read a histogram --------------------------------------------------------

_SYNONYMS = {"xavier": "xavier", "glorot": "xavier", "small": "small", "large": "large",
             "big": "large", "tiny": "small"}
_LABEL_HINTS = {"small": "a spike at 0 in a deep layer means every layer shrank the signal",
                "large": "piles at the edges mean the tanh units sit in their flat parts",
                "xavier": "a broad, smooth bump without piles is what a well-scaled init gives"}


def quiz_truth() -> dict:
    """{letter: "xavier" | "small" | "large"} for the histograms of exercise 3."""
    return {k: ("xavier" if init == "xavier" else "small" if std < 0.1 else "large")
            for k, (init, std) in _init.QUIZ.items()}


@check("histogram reading")
def check_histogram_reading(answer) -> Verdict:
    """Check {letter: "xavier" | "small" | "large"} against the histograms of exercise 3.

    Any input gets one line: None, a non-dict, missing or extra letters, unknown labels and a
    label used twice are named.

    Used in notebooks/03_init.ipynb.
    """
    name = "histogram reading"
    truth = quiz_truth()
    letters = sorted(truth)
    if answer is None:
        raise CheckFailed("`answer` is None", "fill in the dict of labels")
    if not isinstance(answer, dict):
        raise CheckFailed(f"`answer` is a {type(answer).__name__}, not a dict",
                          'write it as {"A": "...", "B": "...", "C": "..."}')
    clean = {str(k).strip().upper(): v for k, v in answer.items()}
    missing = [k for k in letters if k not in clean]
    extra = sorted(k for k in clean if k not in truth)
    if missing or extra:
        raise CheckFailed(f"`answer` has the keys {sorted(clean)}, expected {letters}",
                          "one label per histogram letter, nothing else")
    labels = {}
    for k in letters:
        v = clean[k]
        label = _SYNONYMS.get(v.strip().lower()) if isinstance(v, str) else None
        if label is None:
            raise CheckFailed(f"the label of {k} is {v!r}",
                              'each label is one of "xavier", "small", "large"')
        labels[k] = label
    if len(set(labels.values())) < len(letters):
        raise CheckFailed(f"a label is used twice: {labels}",
                          "the three histograms come from three different inits")
    bad = [k for k in letters if labels[k] != truth[k]]
    hint = "; ".join(f"{k}: {_LABEL_HINTS[truth[k]]}" for k in bad)
    return verdict(name, float(len(bad)), tol=0, close=0, what="wrong labels", hint=hint)
