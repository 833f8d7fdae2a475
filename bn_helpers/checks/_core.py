"""Shared pieces of the exercise checks: relative error and the one-line verdict.

Used in the exercises of every notebook.
"""

from __future__ import annotations

import numpy as np

# CS231n's reading of a relative error (cs231n.github.io, neural-networks-3)
BANDS = ((1e-7, "PASS"), (1e-4, "CLOSE"), (np.inf, "FAIL"))


def rel_error(a, b) -> float:
    """max |a - b| / max(1e-8, |a| + |b|), CS231n's relative error.

    Used in notebooks/04_bn_math.ipynb.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("inf")
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)), initial=0.0))


class Verdict:
    """Outcome of a check: truthy on PASS; shows nothing as a cell's last value (the line is printed)."""

    def __init__(self, name: str, status: str, value: float):
        self.name, self.status, self.value = name, status, value

    def __bool__(self) -> bool:
        return self.status == "PASS"

    def __repr__(self) -> str:
        return f"Verdict({self.name!r}, {self.status}, {self.value:.2e})"

    def _ipython_display_(self):
        pass


def verdict(name: str, value: float, *, tol: float = 1e-7, close: float = 1e-4,
            what: str = "max rel error", hint: str = "") -> Verdict:
    """Print `name | what value | PASS/CLOSE/FAIL [| hint]`; the result is truthy on PASS.

    PASS when value <= tol, CLOSE when <= close (worth a second look),
    FAIL otherwise; the hint is printed unless the check passed.

    Used in the exercises of every notebook.
    """
    status = "PASS" if value <= tol else "CLOSE" if value <= close else "FAIL"
    line = f"{name} | {what} {value:.2e} | {status}"
    if status != "PASS" and hint:
        line += f" | hint: {hint}"
    print(line)
    return Verdict(name, status, value)


def run_student(name: str, fn, *args):
    """Call the student's function; turn an exception into a FAIL line (returns None then)."""
    try:
        return fn(*args)
    except NotImplementedError:
        print(f"{name} | not implemented yet | FAIL | hint: replace `raise NotImplementedError` "
              "with your code")
    except Exception as err:  # a student's bug is a verdict, not a traceback
        print(f"{name} | raised {type(err).__name__}: {err} | FAIL")
    return None


def compare_output(name: str, got, ref, hint, *, tol: float = 1e-7) -> Verdict:
    """Verdict for a student's array against a reference: shape first, then relative error.

    `got` is what `run_student` returned (None: it already printed the failure);
    `hint` is a string or a function of the float64 output that returns one.
    """
    if got is None:
        return failed(name)
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        return verdict(name, np.inf, hint=f"output shape {got.shape}, expected {ref.shape}")
    return verdict(name, rel_error(got, ref), tol=tol, hint=hint(got) if callable(hint) else hint)


def failed(name: str) -> Verdict:
    """The verdict after `run_student` already printed the failure."""
    return Verdict(name, "FAIL", float("inf"))
