"""Checks for the inference exercises: the running-statistics update and folding BN into a layer.

Each check runs the student's function on several inputs and parameter values (a hard-coded
momentum or eps fails), and recognizes the usual mistakes by computing what each would return.
`STATS_MISTAKES` and `FOLD_MISTAKES` list them (hint, function computing the wrong answer) in
the order they are tried; tests/test_checks_inference.py holds the table of wrong answers.

Used in notebooks/05_inference.ipynb.
"""

from __future__ import annotations

import numpy as np

from ._core import (CheckFailed, Verdict, as_array, check, fail, grading_mode, rel_error, student,
                    verdict)

STATS_NAME = "running statistics update"
FOLD_NAME = "fold BN into a dense layer"


# --- exercise 1: the running-statistics update ---------------------------------------------


def _stats_case(seed: int, m: int, d: int):
    rng = np.random.default_rng(seed)
    running_mean = rng.standard_normal(d)
    running_var = rng.uniform(0.5, 2.0, d)
    x = 3.0 * rng.standard_normal((m, d)) + 4.0  # small batches: m/(m-1) is visible
    return running_mean, running_var, x


def _stats_cases(momentum: float):
    """(running_mean, running_var, x, momentum) cases: the visible momentum first (a square x,
    so that a mean over the wrong axis still runs and can be named), then other momenta."""
    cases = [(*_stats_case(0, 6, 6), momentum), (*_stats_case(1, 10, 3), 0.6),
             (*_stats_case(2, 4, 4), 0.99), (*_stats_case(3, 8, 2), 0.7)]
    if grading_mode():
        cases += [(*_stats_case(10, 3, 6), 0.3), (*_stats_case(11, 20, 5), 0.95)]
    return cases


def running_update(mean, var, x, momentum, *, unbiased: bool = True):
    """The reference: momentum weighs the old value; the stored variance is unbiased."""
    m = x.shape[0]
    v = x.var(0) * (m / (m - 1) if unbiased else 1.0)
    return momentum * mean + (1 - momentum) * x.mean(0), momentum * var + (1 - momentum) * v


def _swap(pair):
    return pair[1], pair[0]


# (hint, wrong answer as a function of one case), tried in this order
STATS_MISTAKES = [
    ("your momentum weighs the new batch: that is PyTorch's convention (its momentum=0.1 is our "
     "0.9); here momentum weighs the OLD value: new = momentum * old + (1 - momentum) * batch",
     lambda mean, var, x, mom: running_update(mean, var, x, 1 - mom)),
    ("PyTorch's momentum convention AND the biased variance: momentum weighs the OLD value, and "
     "the stored variance is the unbiased one, m/(m-1) times the biased",
     lambda mean, var, x, mom: running_update(mean, var, x, 1 - mom, unbiased=False)),
    ("store the unbiased batch variance, m/(m-1) times the biased one x.var(0) (Algorithm 2, "
     "PyTorch), not the biased one",
     lambda mean, var, x, mom: running_update(mean, var, x, mom, unbiased=False)),
    ("the unbiased variance is m/(m-1) times the biased one: you used (m-1)/m",
     lambda mean, var, x, mom: (running_update(mean, var, x, mom)[0],
                                mom * var + (1 - mom) * x.var(0) * (x.shape[0] - 1) / x.shape[0])),
    ("you returned (new_var, new_mean): the order is (new_mean, new_var)",
     lambda mean, var, x, mom: _swap(running_update(mean, var, x, mom))),
    ("the running statistics must mix the old values in; you returned the batch mean and variance",
     lambda mean, var, x, mom: (x.mean(0), x.var(0, ddof=1))),
    ("the batch statistics are per feature: reduce over the batch axis, axis=0",
     lambda mean, var, x, mom: (mom * mean + (1 - mom) * x.mean(), mom * var + (1 - mom)
                                * x.var(ddof=1))),
    ("the batch statistics are per feature: reduce over the batch axis, axis=0, not axis=1",
     lambda mean, var, x, mom: (mom * mean + (1 - mom) * x.mean(1), mom * var + (1 - mom)
                                * x.var(1, ddof=1))),
    ("store the variance, not the standard deviation",
     lambda mean, var, x, mom: (running_update(mean, var, x, mom)[0],
                                mom * var + (1 - mom) * x.std(0, ddof=1))),
]


def _hard_coded(got, case, momenta):
    """The momentum a function used if it ignored its argument (right for one momentum only)."""
    mean, var, x, mom = case
    for c in momenta:
        if c != mom and _matches(got, running_update(mean, var, x, c)):
            return c
    return None


def _same(got, wrong, case):
    """Whether `got` equals what the mistake `wrong` returns on `case` (False if it cannot run)."""
    try:
        ref = wrong(*case)
    except (ValueError, TypeError, IndexError):
        return False
    return _matches(got, ref)


def _matches(got, ref):
    return all(np.shape(g) == np.shape(r) and np.allclose(g, r, rtol=1e-5, atol=1e-8)
               for g, r in zip(got, ref, strict=True))


def _pair(out, shape, what):
    """The student's output as two float64 arrays of `shape`, or CheckFailed saying what it is."""
    if out is None:
        as_array(out, what="your function's result")  # raises the "forgot return" failure
    if isinstance(out, dict) or not isinstance(out, (tuple, list)) or len(out) != 2:
        kind = f"a {type(out).__name__}" + (f" of length {len(out)}"
                                            if isinstance(out, (tuple, list)) else "")
        raise CheckFailed(f"your function returned {kind}", f"return a tuple {what}")
    names = what.strip("()").split(", ")
    return tuple(as_array(o, shape, what=n) for o, n in zip(out, names, strict=True))


@check(STATS_NAME)
def check_running_stats_update(fn, *, momentum: float = 0.9) -> Verdict:
    """Check fn(running_mean, running_var, x, momentum) -> (new_mean, new_var): momentum weighs
    the old value, the variance stored is the unbiased batch variance (m/(m-1)), x is (m, D).
    Tried on four batches with momenta `momentum`, 0.6, 0.99 and 0.7 (more under the grader).

    Used in notebooks/05_inference.ipynb.
    """
    cases = _stats_cases(momentum)
    worst, hint = 0.0, ""
    for case in cases:
        mean, var, x, mom = case
        try:
            got = _pair(student(fn, mean.copy(), var.copy(), x.copy(), mom), mean.shape,
                        "(new_mean, new_var)")
        except CheckFailed as err:
            if not hint:
                raise
            # an earlier case already named the mistake: keep that hint
            return fail(STATS_NAME, f"{err.what} (at momentum={mom}, x of shape {x.shape})", hint)
        ref = running_update(mean, var, x, mom)
        err = max(rel_error(g, r) for g, r in zip(got, ref, strict=True))
        if err > worst:
            worst = err
        if err > 1e-6 and not hint:
            hint = next((h for h, wrong in STATS_MISTAKES if _same(got, wrong, case)), "")
            if not hint:
                c = _hard_coded(got, case, [cases[0][3], 0.9, 0.99, 0.1, 0.5])
                if c is not None:
                    hint = (f"right for momentum={c} only, wrong at momentum={mom}: use the "
                            "`momentum` argument, not a constant")
            hint = hint or (f"wrong at momentum={mom}, m={x.shape[0]}: new = momentum * old + "
                            "(1 - momentum) * batch statistic, with the unbiased batch variance")
    return verdict(STATS_NAME, worst, tol=1e-6, hint=hint)


# --- exercise 2: folding BN into the dense layer before it -------------------------------------


def _fold_case(seed: int, n_in: int, n_out: int, eps: float):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n_in, n_out))
    b = rng.standard_normal(n_out)
    gamma = rng.uniform(0.5, 2.0, n_out)
    beta = rng.standard_normal(n_out)
    mean = 3.0 * rng.standard_normal(n_out)
    var = rng.uniform(0.01, 3.0, n_out)
    var[0] = 1e-3  # one tiny variance: a missing or misplaced eps shows
    return W, b, gamma, beta, mean, var, eps


def _fold_cases(eps: float):
    """A square W first (rows and columns can be confused), then the visible eps, then others."""
    cases = [_fold_case(4, 4, 4, eps), _fold_case(1, 7, 4, eps), _fold_case(2, 5, 3, 0.1),
             _fold_case(3, 3, 6, 1e-2)]
    if grading_mode():
        cases += [_fold_case(12, 6, 6, 1e-5), _fold_case(13, 9, 2, 0.5)]
    return cases


def fold(W, b, gamma, beta, mean, var, eps):
    """The reference: W' = W * s, b' = (b - mean) * s + beta, s = gamma / sqrt(var + eps)."""
    s = gamma / np.sqrt(var + eps)
    return W * s[None, :], (b - mean) * s + beta


def _scaled(W, b, mean, beta, s):
    return W * s[None, :], (b - mean) * s + beta


FOLD_MISTAKES = [
    ("eps goes inside the square root: scale = gamma / sqrt(var + eps), not gamma / (sqrt(var) + eps)",
     lambda W, b, g, be, mu, v, e: _scaled(W, b, mu, be, g / (np.sqrt(v) + e))),
    ("you left out eps: scale = gamma / sqrt(var + eps), as BN computes it in eval mode",
     lambda W, b, g, be, mu, v, e: _scaled(W, b, mu, be, g / np.sqrt(v))),
    ("divide by the standard deviation: scale = gamma / sqrt(var + eps), not gamma / (var + eps)",
     lambda W, b, g, be, mu, v, e: _scaled(W, b, mu, be, g / (v + e))),
    ("gamma is missing from the scale: scale = gamma / sqrt(var + eps)",
     lambda W, b, g, be, mu, v, e: _scaled(W, b, mu, be, 1 / np.sqrt(v + e))),
    ("beta is missing: b' = (b - mean) * scale + beta",
     lambda W, b, g, be, mu, v, e: (fold(W, b, g, be, mu, v, e)[0], (b - mu) * g / np.sqrt(v + e))),
    ("the layer's own bias b passes through BN too: b' = (b - mean) * scale + beta",
     lambda W, b, g, be, mu, v, e: (fold(W, b, g, be, mu, v, e)[0], be - mu * g / np.sqrt(v + e))),
    ("subtract the running mean: b' = (b - mean) * scale + beta",
     lambda W, b, g, be, mu, v, e: (fold(W, b, g, be, mu, v, e)[0], b * g / np.sqrt(v + e) + be)),
    ("sign of the mean: BN subtracts it, b' = (b - mean) * scale + beta",
     lambda W, b, g, be, mu, v, e: (fold(W, b, g, be, mu, v, e)[0],
                                    (b + mu) * g / np.sqrt(v + e) + be)),
    ("the mean is scaled too: b' = (b - mean) * scale + beta, not b * scale - mean + beta",
     lambda W, b, g, be, mu, v, e: (fold(W, b, g, be, mu, v, e)[0],
                                    b * g / np.sqrt(v + e) - mu + be)),
    ("scale each output COLUMN j of W by scale_j (W has shape (in, out)): W * scale[None, :], "
     "not the rows",
     lambda W, b, g, be, mu, v, e: (W * (g / np.sqrt(v + e))[:, None],
                                    fold(W, b, g, be, mu, v, e)[1])),
    ("W' is transposed: keep W's shape (in, out) and scale its columns, W * scale[None, :]",
     lambda W, b, g, be, mu, v, e: (fold(W, b, g, be, mu, v, e)[0].T,
                                    fold(W, b, g, be, mu, v, e)[1])),
    ("you returned (b', W'): the order is (W_folded, b_folded)",
     lambda W, b, g, be, mu, v, e: _swap(fold(W, b, g, be, mu, v, e))),
]


def _fold_outputs(fn, case):
    W, b, gamma, beta, mean, var, eps = case
    out = student(fn, *(a.copy() for a in case[:6]), eps)
    if isinstance(out, (tuple, list)) and len(out) == 2:
        shapes = tuple(np.shape(o) for o in out)
        if shapes == (W.shape[::-1], b.shape) and W.shape[0] != W.shape[1]:
            raise CheckFailed(f"W' has shape {shapes[0]}, expected {W.shape}",
                              "W' is transposed: keep W's shape (in, out) and scale its columns, "
                              "W * scale[None, :]")
        if shapes == (b.shape, W.shape):
            raise CheckFailed("you returned (b', W')", "the order is (W_folded, b_folded)")
    return _pair(out, None, "(W_folded, b_folded)")


@check(FOLD_NAME)
def check_fold_bn(fn, *, eps: float = 1e-3) -> Verdict:
    """Check fn(W, b, gamma, beta, mean, var, eps) -> (W', b') such that x @ W' + b' equals
    eval-mode BN(x @ W + b) (the value reported is the largest error of the outputs over the
    largest output, on random x).
    Tried on four layers (one square) with eps `eps`, 0.1 and 0.01 (more under the grader).

    Used in notebooks/05_inference.ipynb.
    """
    worst, hint = 0.0, ""
    for i, case in enumerate(_fold_cases(eps)):
        W, b, gamma, beta, mean, var, e = case
        try:
            Wf, bf = _fold_outputs(fn, case)
        except CheckFailed as err:
            if not hint:
                raise
            # an earlier case already named the mistake: keep that hint
            return fail(FOLD_NAME, f"{err.what} (for W of shape {W.shape}, eps={e})", hint)
        if Wf.shape != W.shape or bf.shape != b.shape:
            raise CheckFailed(f"W' has shape {Wf.shape} and b' {bf.shape}, expected {W.shape} "
                              f"and {b.shape}", "W' keeps W's shape (in, out); b' has one value "
                              "per output unit")
        x = np.random.default_rng(100 + i).standard_normal((10, W.shape[0]))
        ref = gamma * (x @ W + b - mean) / np.sqrt(var + e) + beta
        # relative to the size of the outputs: float32 answers pass, every listed mistake fails
        err = float(np.max(np.abs(x @ Wf + bf - ref)) / np.max(np.abs(ref)))
        worst = max(worst, err)
        if err > 1e-6 and not hint:
            hint = next((h for h, wrong in FOLD_MISTAKES if _same((Wf, bf), wrong, case)), "")
            if not hint and e != eps and _matches((Wf, bf), fold(*case[:6], eps)):
                hint = (f"right for eps={eps} only, wrong at eps={e}: use the `eps` argument, "
                        "not a constant")
            hint = hint or (f"wrong for W of shape {W.shape}, eps={e}: W' = W * scale[None, :], "
                            "b' = (b - mean) * scale + beta, scale = gamma / sqrt(var + eps)")
    return verdict(FOLD_NAME, worst, tol=1e-6, what="max |error| / max |output|", hint=hint)
