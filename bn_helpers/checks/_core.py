"""Shared pieces of the exercise checks: relative error, answer validation and the one-line verdict.

Every check is wrapped by `@check(name)`: whatever the student passes or returns (None, a string,
the wrong shape, NaN, an exception), the check prints exactly one line, PASS, CLOSE or FAIL, and
never lets a traceback out. Inside a check, `student(...)`, `as_array(...)` and `as_number(...)`
raise `CheckFailed` with a specific message and hint; the wrapper turns it into the FAIL line.

Used in the exercises of every notebook.
"""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np

# CS231n's reading of a relative error (cs231n.github.io, neural-networks-3)
BANDS = ((1e-7, "PASS"), (1e-4, "CLOSE"), (np.inf, "FAIL"))

RETURN_NONE_HINT = "your function returned None: did you forget `return`?"


def float64_pair(a, b):
    """(a, b) as float64 arrays of one shape (ValueError otherwise); (None, None) if any is NaN/inf.

    Shared by the relative errors here and in bn_helpers.bn_math_fd.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return None, None
    return a, b


def rel_error(a, b) -> float:
    """max |a - b| / max(1e-8, |a| + |b|), CS231n's relative error.

    Used in notebooks/04_bn_math.ipynb.
    """
    a, b = float64_pair(a, b)
    if a is None:
        return float("inf")
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)), initial=0.0))


class Verdict:
    """Outcome of a check: truthy on PASS; shows nothing as a cell's last value (the line is printed).

    `status` is PASS, CLOSE or FAIL; `value` the number that matters; `hint` what was printed
    after it (empty on PASS); `line` the whole printed line.
    """

    def __init__(self, name: str, status: str, value: float, hint: str = "", line: str = ""):
        self.name, self.status, self.value = name, status, value
        self.hint, self.line = hint, line

    def __bool__(self) -> bool:
        return self.status == "PASS"

    def __repr__(self) -> str:
        return f"Verdict({self.name!r}, {self.status}, {self.value:.2e})"

    def _ipython_display_(self):
        pass


class CheckFailed(Exception):
    """Raised inside a check to end it with one FAIL line: `what` went wrong, and a `hint`."""

    def __init__(self, what: str, hint: str = ""):
        super().__init__(what)
        self.what, self.hint = what, hint


def _emit(name: str, status: str, value: float, text: str, hint: str) -> Verdict:
    line = f"{name} | {text} | {status}"
    if status != "PASS" and hint:
        line += f" | hint: {hint}"
    print(line)
    return Verdict(name, status, value, hint if status != "PASS" else "", line)


def verdict(name: str, value: float, *, tol: float = 1e-7, close: float = 1e-4,
            what: str = "max rel error", hint: str = "") -> Verdict:
    """Print `name | what value | PASS/CLOSE/FAIL [| hint]`; the result is truthy on PASS.

    PASS when value <= tol, CLOSE when <= close (worth a second look),
    FAIL otherwise (NaN counts as FAIL); the hint is printed unless the check passed.

    Used in the exercises of every notebook.
    """
    value = float(value)
    status = ("PASS" if value <= tol else "CLOSE" if value <= close else "FAIL")
    return _emit(name, status, value, f"{what} {value:.2e}", hint)


def fail(name: str, what: str, hint: str = "") -> Verdict:
    """Print a FAIL line that says `what` went wrong (no number to show) and return the Verdict."""
    return _emit(name, "FAIL", float("inf"), what, hint)


def check(name: str):
    """Decorator for a check function: exactly one verdict line, whatever happens inside.

    The wrapped function returns a Verdict (normally from `verdict` or `fail`); a `CheckFailed`
    becomes a FAIL line with its hint; any other exception becomes a FAIL line naming it.
    """

    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            try:
                result = fn(*args, **kwargs)
            except CheckFailed as err:
                return fail(name, err.what, err.hint)
            except Exception as err:  # the check itself choked on the answer: still one line
                return fail(name, f"could not check this answer ({type(err).__name__}: {err})",
                            "compare what you return with the exercise's description")
            if not isinstance(result, Verdict):
                return fail(name, "the check produced no verdict", "please report this")
            return result

        inner.check_name = name
        return inner

    return wrap


def student(fn, *args):
    """Call the student's function; raise CheckFailed if it is missing, unfinished or raises."""
    if not callable(fn):
        raise CheckFailed(f"expected a function, got {_describe(fn)}",
                          "pass the function itself (its name without parentheses)")
    try:
        return fn(*args)
    except NotImplementedError:
        raise CheckFailed("not implemented yet",
                          "replace `raise NotImplementedError` with your code") from None
    except Exception as err:  # a student's bug is a verdict, not a traceback
        raise CheckFailed(f"your function raised {type(err).__name__}: {err}",
                          "run your function on a small input and read the error") from None


def _describe(x) -> str:
    if x is None:
        return "None"
    shape = getattr(x, "shape", None)
    if shape is not None:
        return f"a {type(x).__name__} of shape {tuple(shape)}"
    return f"a {type(x).__name__}"


def as_array(got, shape=None, *, what: str = "output") -> np.ndarray:
    """`got` as a float64 array, or CheckFailed naming None, a wrong type, shape or NaN/inf."""
    if got is None:
        raise CheckFailed(f"{what} is None", RETURN_NONE_HINT)
    if isinstance(got, (str, bytes, dict, set)) or callable(got):
        raise CheckFailed(f"{what} is {_describe(got)}",
                          f"return an array{'' if shape is None else f' of shape {tuple(shape)}'}")
    try:
        arr = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        raise CheckFailed(f"{what} is {_describe(got)}, not an array of numbers",
                          "return one array (for example a jnp.ndarray), not a list of pieces") from None
    if shape is not None and arr.shape != tuple(shape):
        raise CheckFailed(f"{what} has shape {arr.shape}, expected {tuple(shape)}",
                          "check which axis you reduce over and whether you kept the batch axis")
    bad_nan, bad_inf = int(np.isnan(arr).sum()), int(np.isinf(arr).sum())
    if bad_nan or bad_inf:
        raise CheckFailed(f"{what} contains {bad_nan} NaN and {bad_inf} inf value(s)",
                          "a division by zero or the square root of a negative number?")
    return arr


def as_number(got, *, what: str = "answer") -> float:
    """`got` as one finite float, or CheckFailed naming what it was instead."""
    if got is None:
        raise CheckFailed(f"{what} is None", RETURN_NONE_HINT)
    if isinstance(got, bool) or isinstance(got, (str, bytes, dict, set, list, tuple)):
        raise CheckFailed(f"{what} is {_describe(got)}", "give a single number")
    if not isinstance(got, numbers.Real):
        arr = np.asarray(got) if hasattr(got, "shape") else None
        if arr is None or arr.size != 1 or not np.issubdtype(arr.dtype, np.number):
            raise CheckFailed(f"{what} is {_describe(got)}", "give a single number")
        got = arr.ravel()[0]
    value = float(got)
    if not math.isfinite(value):
        raise CheckFailed(f"{what} is {value}", "a finite number is expected")
    return value


def run_student(name: str, fn, *args):
    """Old-style call (kept for checks not yet converted): the output, or None after a FAIL line."""
    try:
        return student(fn, *args)
    except CheckFailed as err:
        fail(name, err.what, err.hint)
        return None


def compare_output(name: str, got, ref, hint, *, tol: float = 1e-7) -> Verdict:
    """Verdict for a student's array against a reference: validity and shape first, then rel. error.

    `hint` is a string or a function of the float64 output that returns one.
    """
    ref = np.asarray(ref, dtype=np.float64)
    got = as_array(got, ref.shape)
    return verdict(name, rel_error(got, ref), tol=tol, hint=hint(got) if callable(hint) else hint)


def failed(name: str) -> Verdict:
    """The verdict after `run_student` already printed the failure."""
    return Verdict(name, "FAIL", float("inf"))


def grading_mode() -> bool:
    """True while the grader runs (BN_GRADING=1): checks then add hidden cases to the visible ones.

    Used by `python dev.py grade` (tools/grade.py).
    """
    import os

    return os.environ.get("BN_GRADING", "0") == "1"


def fallback(result: Verdict, mine, reference, what: str):
    """`mine` if its check passed, else `reference` with a printed note, so later cells still run.

    Used in the exercises of every notebook: `fn = bnh.checks.fallback(v, my_fn, bnh.fn, "my_fn")`.
    """
    if isinstance(result, Verdict) and result.status == "PASS":
        return mine
    print(f"note: the cells below use the reference version instead of {what} "
          "until your version passes its check")
    return reference
