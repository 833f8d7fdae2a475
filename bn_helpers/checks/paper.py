"""Checks for notebook 06's exercises: predict-then-run and reading Fig. 1(b, c).

Used in notebooks/06_paper_experiment.ipynb.
"""

from __future__ import annotations

import numpy as np

from ._core import Verdict, failed, run_student, verdict

_NAMES = ("with BN", "without BN")


def _measured(result, step):
    """Seed-median test accuracy of each network at `step` (default: the last evaluation)."""
    from ..paper import acc_at

    step = int(result.steps[-1]) if step is None else int(step)
    return {name: float(np.median(acc_at(result.select(result.bn == flag), step)))
            for name, flag in (("with BN", True), ("without BN", False))}, step


def check_prediction(prediction: dict, result, *, step: int | None = None) -> Verdict:
    """Compare predicted accuracies {"with BN": a, "without BN": b} with a `bnh.paper.run` result.

    The value is the larger of the two absolute errors: PASS within 0.10,
    CLOSE within 0.20, FAIL beyond (a prediction, not a computation: the point
    is to commit to numbers first and then see where intuition was off).

    Used in notebooks/06_paper_experiment.ipynb.
    """
    if not isinstance(prediction, dict) or set(prediction) != set(_NAMES):
        raise ValueError(f"`prediction` must be a dict with exactly the keys {_NAMES}, "
                         f"got {prediction!r}")
    for k, v in prediction.items():
        if not isinstance(v, (int, float, np.floating)) or not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"`prediction`[{k!r}] must be an accuracy in [0, 1], got {v!r}")
    if not hasattr(result, "bn") or not hasattr(result, "test_acc"):
        raise TypeError(f"`result` must come from bnh.paper.run, got {type(result).__name__}")
    measured, step = _measured(result, step)
    errors = {k: abs(float(prediction[k]) - measured[k]) for k in _NAMES}
    worst = max(errors, key=errors.get)
    print(f"measured after {step:,} steps: with BN {measured['with BN']:.3f}, "
          f"without BN {measured['without BN']:.3f}")
    hint = (f"{worst} is off by {errors[worst]:.2f}: "
            + ("a sigmoid net with tiny weights and no BN passes almost no signal, so it sits at "
               "chance (0.1) until the weights grow" if worst == "without BN" else
               "BN rescales every layer to unit variance, so tiny initial weights do not "
               "slow it down"))
    return verdict("predict, then run", errors[worst], tol=0.10, close=0.20,
                   what=f"largest |prediction - measurement| ({worst})", hint=hint)


def _ref_summary(p):
    p = np.asarray(p, dtype=np.float64)
    med = p[:, 1]
    return np.array([med.max() - med.min(), p[0, 2] - p[0, 0], p[-1, 2] - p[-1, 0]])


def _summary_hint(got, p):
    p = np.asarray(p, dtype=np.float64)
    if np.allclose(got[0], p[:, 1].std(), atol=1e-9):
        return "median_range is max - min of the median over training, not its standard deviation"
    if (np.allclose(got[0], np.ptp(p[1]), atol=1e-9)
            or np.allclose(got[0], np.ptp(p[:, 0]), atol=1e-9)):
        return ("rows are evaluation steps, columns the 15th, 50th and 85th percentile: "
                "the median is p[:, 1]")
    if np.allclose(got[1:], [p[0, 2] - p[0, 1], p[-1, 2] - p[-1, 1]], atol=1e-9):
        return "the spread is the 85th minus the 15th percentile, p[t, 2] - p[t, 0]"
    if np.allclose(got[1:], [p[0, 2] - p[0, 0], p[-1, 2] - p[-1, 0]][::-1], atol=1e-9):
        return "spread_start is the first row (step 0), spread_end the last"
    return "compute each of the three numbers on the small example p printed by the check"


def check_percentile_summary(fn) -> Verdict:
    """Check fn(p) -> (median_range, spread_start, spread_end) for p of shape (steps, 3).

    p's columns are the 15th, 50th and 85th percentiles; median_range is
    max - min of the median over training, a spread is 85th - 15th.

    Used in notebooks/06_paper_experiment.ipynb.
    """
    name = "percentile summary"
    rng = np.random.default_rng(6)
    worst = 0.0
    hint = ""
    for case in range(3):
        mid = np.cumsum(rng.normal(0, 0.5, 12)) + case
        half = np.abs(rng.normal(1.0, 0.3, (12, 1))) * np.array([[-1.0, 0.0, 1.2]])
        p = mid[:, None] + half
        got = run_student(name, fn, p.copy())
        if got is None:
            return failed(name)
        got = np.asarray(got, dtype=np.float64).ravel()
        if got.shape != (3,):
            return verdict(name, np.inf, what="max abs error",
                           hint=f"return three numbers, got shape {got.shape}")
        err = float(np.max(np.abs(got - _ref_summary(p))))
        if not np.isfinite(err):
            err = np.inf
        if err > worst:
            worst, hint = err, _summary_hint(got, p)
    return verdict(name, worst, tol=1e-6, close=1e-3, what="max abs error", hint=hint)
