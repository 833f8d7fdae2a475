"""Every public check answers garbage with exactly one FAIL line and never lets an exception out.

The checks are discovered from the modules of bn_helpers/checks (every function decorated with
`@check`), so a new check is covered without editing this file. A check whose first argument is
a function (`fn`) or that calls what it gets must tell a function returning None to check its
`return`. Checks with extra arguments get them from EXTRA_ARGS (the same inputs the notebooks
pass); a new check with required extra arguments fails `test_every_check_has_its_arguments`
until it gets an entry.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import jax
import numpy as np
import pytest

import bn_helpers as bnh
import bn_helpers.checks as checks_pkg
from bn_helpers.checks._core import RETURN_NONE_HINT


def _discover():
    found = {}
    for info in pkgutil.iter_modules(checks_pkg.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{checks_pkg.__name__}.{info.name}")
        for name, obj in vars(module).items():
            if (name.startswith("check_") and inspect.isfunction(obj)
                    and obj.__module__ == module.__name__):
                found[name] = obj
    return dict(sorted(found.items()))


CHECKS = _discover()


# ---- extra arguments, built like the notebooks build them (small where the check allows) ----

def _zigzag_args():
    x, t = bnh.zigzag.make_inputs(scale_ratio=5.0, offset=1.0, mode="raw")
    return (x, t)


def _paper_args():
    rng = np.random.default_rng(0)
    x = rng.random((120, 16)).astype(np.float32)
    y = rng.integers(0, 10, 120)
    data = (x, y, x[:60], y[:60])
    runs = {name: bnh.fit_many(bnh.MLP((16, 8, 10), activation="sigmoid", bn=bn), data,
                               key=jax.random.PRNGKey(0), lr=0.5, seeds=[0, 1], num_steps=20,
                               eval_every=10, batch_size=20, train_eval=30)
            for name, bn in (("with BN", "before"), ("without BN", None))}
    return (runs,)


EXTRA_ARGS = {
    "check_max_stable_lr": _zigzag_args,
    "check_prediction": _paper_args,
}
_BUILT: dict = {}


def extra_args(name):
    """The extra positional arguments a check requires (none if its signature takes only the
    answer, even when EXTRA_ARGS still has an entry for it)."""
    if name not in EXTRA_ARGS or not _required_extra(CHECKS[name]):
        return ()
    if name not in _BUILT:
        _BUILT[name] = EXTRA_ARGS[name]()
    return _BUILT[name]


def _required_extra(fn):
    params = list(inspect.signature(fn).parameters.values())[1:]
    return [p.name for p in params
            if p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _takes_function(fn):
    first = next(iter(inspect.signature(fn).parameters))
    return first in ("fn", "func", "function")


# ---- garbage ----

def _nan_like(*args):
    shape = np.shape(args[0]) if args and np.ndim(args[0]) else (3,)
    return np.full(shape, np.nan)


def _wrong_shape(*args):
    return np.ones((2, 3, 5, 7))


def _returns_none(*args):
    _returns_none.calls += 1


def _raises_value_error(*args):
    raise ValueError("garbage")


def _raises_not_implemented(*args):
    raise NotImplementedError("write your solution here")


VALUES = {
    "None": None,
    "a string": "garbage",
    "a tuple": (1.0, 2.0),
    "a dict": {"a": 1},
    "a NaN array": np.full((4, 3), np.nan),
    "a wrongly shaped array": np.ones((2, 3, 5, 7)),
}
FUNCTIONS = {
    "fn returning a string": lambda *a: "garbage",
    "fn returning a tuple": lambda *a: (1.0, 2.0),
    "fn returning a dict": lambda *a: {"a": 1},
    "fn returning NaN": _nan_like,
    "fn returning a wrong shape": _wrong_shape,
    "fn returning None": _returns_none,
    "fn raising ValueError": _raises_value_error,
    "fn raising NotImplementedError": _raises_not_implemented,
}
GARBAGE = {**VALUES, **FUNCTIONS}


def run_check(fn, answer, capsys):
    capsys.readouterr()
    try:
        result = fn(answer, *extra_args(fn.__name__))
    except BaseException as err:  # noqa: BLE001 - the point is that nothing escapes
        pytest.fail(f"{fn.__name__} let {type(err).__name__}: {err} escape")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    return result, lines


def test_checks_are_discovered():
    assert len(CHECKS) >= 10, sorted(CHECKS)
    for name in ("check_batch_norm_forward", "check_standardize", "check_fold_bn"):
        assert name in CHECKS


@pytest.mark.parametrize("name", list(CHECKS))
def test_every_check_is_decorated_and_exported(name):
    fn = CHECKS[name]
    assert getattr(fn, "check_name", None), f"{name} is not decorated with @check(...)"
    assert getattr(bnh.checks, name) is fn, f"bnh.checks.{name} does not reach {fn.__module__}"


@pytest.mark.parametrize("name", list(CHECKS))
def test_every_check_has_its_arguments(name):
    missing = _required_extra(CHECKS[name])
    if missing:
        assert name in EXTRA_ARGS, (f"{name} needs {missing}: add a builder to EXTRA_ARGS in "
                                    "tests/test_checks_garbage.py")


@pytest.mark.parametrize("kind", list(GARBAGE))
@pytest.mark.parametrize("name", list(CHECKS))
def test_garbage_gets_one_fail_line(name, kind, capsys):
    fn = CHECKS[name]
    answer = GARBAGE[kind]
    _returns_none.calls = 0
    result, lines = run_check(fn, answer, capsys)
    assert len(lines) == 1, f"{name} on {kind} printed {len(lines)} lines: {lines}"
    line = lines[0]
    assert line.startswith(f"{fn.check_name} | "), line
    parts = [p.strip() for p in line.split(" | ")]
    assert parts[2] == "FAIL", f"{name} on {kind}: {line}"
    assert isinstance(result, bnh.checks.Verdict) and result.status == "FAIL", result
    assert not result, "a FAIL verdict must be falsy"
    if kind == "fn returning None" and (_takes_function(fn) or _returns_none.calls):
        assert _returns_none.calls, f"{name} never called the function it was given"
        assert RETURN_NONE_HINT in line, f"{name}: no `return` hint in {line!r}"
    if kind == "fn raising NotImplementedError" and _takes_function(fn):
        assert "not implemented yet" in line, line
    if kind == "fn raising ValueError" and _takes_function(fn):
        assert "ValueError" in line, line
