"""Checks for notebook 06's exercises: predict-then-run and reading Fig. 1(b, c).

Each check prints exactly one line for any input (see `_core.check`) and names the typical
mistake it recognizes: for the prediction, accuracies in percent, misspelt keys, the two numbers
swapped; for the percentile summary, the wrong column, a standard deviation instead of a range,
the first and last evaluation swapped, the wrong pair of percentiles.

Used in notebooks/06_paper_experiment.ipynb.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._core import (RETURN_NONE_HINT, CheckFailed, Verdict, as_array, check, grading_mode, student,
                    verdict)

_NAMES = ("with BN", "without BN")
_EXAMPLE = '{"with BN": 0.9, "without BN": 0.1}'


def _measured(result, step):
    """Seed-median test accuracy of each network at `step` (default: the last evaluation)."""
    from ..paper_experiment import acc_at

    if not isinstance(result, dict) or set(result) != set(_NAMES) or not all(
            hasattr(r, "test_acc") and hasattr(r, "eval_steps") for r in result.values()):
        raise CheckFailed(f"`result` is {type(result).__name__}, not the two networks' runs",
                          'pass {"with BN": bnh.fit_many(...), "without BN": bnh.fit_many(...)} '
                          "as the second argument")
    last = int(np.asarray(result["with BN"].eval_steps)[-1])
    step = last if step is None else int(step)
    try:
        measured = {name: float(np.median(acc_at(result[name], step))) for name in _NAMES}
    except ValueError as err:
        raise CheckFailed(f"no evaluation at step {step:,} in `result`",
                          "train with an evaluation at that step (eval_every)") from err
    return measured, step, int(np.shape(result["with BN"].test_acc)[0])


def _as_prediction(prediction) -> dict:
    """The student's prediction as {"with BN": a, "without BN": b} of floats in [0, 1]."""
    if callable(prediction):
        prediction = student(prediction)
        if prediction is None:
            raise CheckFailed("your prediction is None", RETURN_NONE_HINT)
    if prediction is None:
        raise CheckFailed("`prediction` is None", f"fill in a dict like {_EXAMPLE}")
    if not isinstance(prediction, dict):
        raise CheckFailed(f"`prediction` is a {type(prediction).__name__}, not a dict",
                          f"give a dict like {_EXAMPLE}")
    keys = set(prediction)
    if keys != set(_NAMES):
        missing = [k for k in _NAMES if k not in keys]
        extra = sorted(map(repr, keys - set(_NAMES)))
        lowered = {str(k).strip().lower() for k in keys}
        hint = ("the keys are spelt exactly 'with BN' and 'without BN' (capital BN, no spaces "
                "around)" if lowered == {k.lower() for k in _NAMES} else
                f"use exactly the two keys 'with BN' and 'without BN', as in {_EXAMPLE}")
        raise CheckFailed(f"`prediction` lacks {missing}" + (f" and has {', '.join(extra)}"
                                                            if extra else ""), hint)
    out = {}
    for k in _NAMES:
        v = prediction[k]
        if isinstance(v, str):
            raise CheckFailed(f"`prediction`[{k!r}] is the string {v!r}",
                              "write the number without quotes, e.g. 0.9")
        if isinstance(v, bool) or not isinstance(v, (numbers.Real, np.floating, np.integer)):
            raise CheckFailed(f"`prediction`[{k!r}] is a {type(v).__name__}",
                              "give one number per network, a test accuracy in [0, 1]")
        v = float(v)
        if not math.isfinite(v):
            raise CheckFailed(f"`prediction`[{k!r}] is {v}", "give a finite accuracy in [0, 1]")
        out[k] = v
    if any(1.0 < v <= 100.0 for v in out.values()) and all(0.0 <= v <= 100.0 for v in out.values()):
        raise CheckFailed(f"your prediction {out} looks like percentages",
                          "accuracies are fractions in [0, 1]: write 0.85, not 85")
    for k, v in out.items():
        if not 0.0 <= v <= 1.0:
            raise CheckFailed(f"`prediction`[{k!r}] = {v:g} is not an accuracy",
                              "a test accuracy lies in [0, 1] (chance is 0.1 for 10 classes)")
    return out


@check("predict, then run")
def check_prediction(prediction, result, *, step: int | None = None) -> Verdict:
    """Compare predicted accuracies {"with BN": a, "without BN": b} with the measured ones.

    `prediction` is the dict or a function returning it; `result` is
    {"with BN": run, "without BN": run} of two `bnh.fit_many` results. The measurement is the
    median over the result's seeds. The value is the larger of the two absolute
    errors: PASS within 0.10, CLOSE within 0.20, FAIL beyond (a prediction, not a
    computation: the point is to commit to numbers first and then see where
    intuition was off).

    Used in notebooks/06_paper_experiment.ipynb.
    """
    pred = _as_prediction(prediction)
    measured, step, nseeds = _measured(result, step)
    errors = {k: abs(pred[k] - measured[k]) for k in _NAMES}
    worst = max(errors, key=errors.get)
    swapped = max(abs(pred["with BN"] - measured["without BN"]),
                  abs(pred["without BN"] - measured["with BN"]))
    if errors[worst] > 0.10 and swapped <= 0.10:
        hint = "your two numbers fit the measurement swapped: which network did you mean?"
    elif worst == "without BN":
        hint = (f"without BN is off by {errors[worst]:.2f}: a sigmoid net with tiny weights and "
                "no BN passes almost no signal, so it sits at chance (0.1) until the weights grow")
    else:
        hint = (f"with BN is off by {errors[worst]:.2f}: BN rescales every layer to unit "
                "variance, so tiny initial weights do not slow it down")
    return verdict("predict, then run", errors[worst], tol=0.10, close=0.20,
                   what=(f"measured after {step:,} steps (median of {nseeds} "
                         f"seeds): with BN {measured['with BN']:.3f}, without BN "
                         f"{measured['without BN']:.3f}; largest |prediction - measurement| "
                         f"({worst})"), hint=hint)


# --- exercise 2: (median_range, spread_start, spread_end) of a (steps, 3) percentile array ---

def summary_reference(p):
    """(median_range, spread_start, spread_end) of percentiles p, as an array (the reference)."""
    from ..paper_experiment import percentile_summary

    return np.array(percentile_summary(p))


# The usual mistakes, per returned number: (what the mistake computes, hint naming it)
_MEDIAN_MISTAKES = (
    (lambda p: p[:, 1].std(), "median_range is max - min of the median over training, "
                              "not its standard deviation"),
    (lambda p: np.ptp(p[:, 0]), "the median is the middle column p[:, 1], not p[:, 0] "
                                "(the 15th percentile)"),
    (lambda p: np.ptp(p[:, 2]), "the median is the middle column p[:, 1], not p[:, 2] "
                                "(the 85th percentile)"),
    (lambda p: np.ptp(p[1]), "rows are evaluation steps, columns the 15th, 50th and 85th "
                             "percentile: the median is p[:, 1], not the row p[1]"),
    (lambda p: p[-1, 1] - p[0, 1], "median_range is max - min of the median over training, "
                                   "not last minus first"),
    (lambda p: abs(p[-1, 1] - p[0, 1]), "median_range is max - min of the median over "
                                        "training, not |last - first|"),
)
_SPREAD_MISTAKES = (
    (lambda p: (p[-1, 2] - p[-1, 0], p[0, 2] - p[0, 0]),
     "spread_start is the first row p[0] (step 0), spread_end the last row p[-1]: "
     "you swapped them"),
    (lambda p: (p[0, 2] - p[0, 1], p[-1, 2] - p[-1, 1]),
     "the spread is the 85th minus the 15th percentile, p[t, 2] - p[t, 0], not 85th - 50th"),
    (lambda p: (p[0, 1] - p[0, 0], p[-1, 1] - p[-1, 0]),
     "the spread is the 85th minus the 15th percentile, p[t, 2] - p[t, 0], not 50th - 15th"),
    (lambda p: (p[0, 0] - p[0, 2], p[-1, 0] - p[-1, 2]),
     "sign: the spread is 85th minus 15th, p[t, 2] - p[t, 0], a positive number"),
    (lambda p: (p[2, 0] - p[0, 0], p[2, -1] - p[0, -1]),
     "rows are evaluation steps, columns the percentiles: the first spread is "
     "p[0, 2] - p[0, 0], not p[2, 0] - p[0, 0]"),
)


def _summary_hint(got, p):
    ref = summary_reference(p)
    if not np.isclose(got[0], ref[0], atol=1e-6):
        for fn, hint in _MEDIAN_MISTAKES:
            if np.isclose(got[0], fn(p), atol=1e-6):
                return hint
    if not np.allclose(got[1:], ref[1:], atol=1e-6):
        for fn, hint in _SPREAD_MISTAKES:
            if np.allclose(got[1:], fn(p), atol=1e-6):
                return hint
    if np.allclose(got, ref[[0, 2, 1]], atol=1e-6) or np.allclose(got, ref[::-1], atol=1e-6):
        return "return the three numbers in the order (median_range, spread_start, spread_end)"
    return ("compute each of the three numbers from p (rows: evaluations; columns: 15th, 50th, "
            "85th percentile) and compare with a hand calculation on a small p")


def _cases():
    """Percentile arrays of several lengths (a hard-coded answer fits at most one)."""
    rng = np.random.default_rng(6)
    lengths = (12, 5, 30) + ((7, 101, 2) if grading_mode() else ())
    for case, n in enumerate(lengths):
        mid = np.cumsum(rng.normal(0, 0.5, n)) + case
        half = np.abs(rng.normal(1.0, 0.3, (n, 1))) * np.array([[-1.0, 0.0, 1.2]])
        yield mid[:, None] + half


@check("percentile summary")
def check_percentile_summary(fn) -> Verdict:
    """Check fn(p) -> (median_range, spread_start, spread_end) for p of shape (steps, 3).

    p's columns are the 15th, 50th and 85th percentiles; median_range is
    max - min of the median over training, a spread is 85th - 15th at the first
    and at the last evaluation. Tries arrays of 12, 5 and 30 evaluations (more
    under the grader).

    Used in notebooks/06_paper_experiment.ipynb.
    """
    name = "percentile summary"
    worst, hint = 0.0, ""
    for p in _cases():
        raw = student(fn, p.copy())
        if isinstance(raw, dict):
            raise CheckFailed("your summary is a dict",
                              "return a tuple of three numbers: (median_range, spread_start, "
                              "spread_end)")
        got = as_array(raw, what="your summary").ravel()
        if got.shape != (3,):
            raise CheckFailed(f"your summary has {got.size} number(s)",
                              "return three numbers: (median_range, spread_start, spread_end)")
        err = float(np.max(np.abs(got - summary_reference(p))))
        if err > worst:
            worst, hint = err, _summary_hint(got, p)
    return verdict(name, worst, tol=1e-6, close=1e-3, what="max abs error", hint=hint)
