"""Mistake tables for notebook 06's checks (issue 12): each wrong answer gets FAIL with its own hint,
the reference answer gets PASS, every call prints exactly one line; and the student copy of the
notebook is valid Python whose exercise cells run (FAIL "not implemented yet", then the fallback).
"""

from __future__ import annotations

import ast
import contextlib
import io
import subprocess
import sys
from pathlib import Path

import jax
import nbformat
import numpy as np
import pytest

import bn_helpers as bnh
from bn_helpers.checks._core import RETURN_NONE_HINT

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "06_paper_experiment.ipynb"

# ---- a result with known accuracies: with BN 0.88, without BN 0.10 (medians over 3 seeds) ----

MEASURED = {"with BN": 0.88, "without BN": 0.10}


def _result():
    """{"with BN": FitResult, "without BN": FitResult}, 3 seeds, evaluations at 0 and 1,000."""
    from bn_helpers.train import FitResult

    out = {}
    for name, final in (("without BN", [0.09, 0.10, 0.11]), ("with BN", [0.87, 0.88, 0.90])):
        test_acc = np.stack([np.full(3, 0.1), final], axis=1)
        out[name] = FitResult(loss=np.ones((3, 1000)), eval_steps=np.array([0, 1000]),
                              test_acc=test_acc, train_acc=test_acc.copy(),
                              probe=np.zeros((3, 2, 3, 4)), params=None, state=None)
    return out


RESULT = _result()


def one_line(capsys, fn, *args, **kwargs):
    capsys.readouterr()
    verdict = fn(*args, **kwargs)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    return verdict, lines[0]


# prediction -> (expected status, substring of the printed line)
PREDICTION_TABLE = {
    "the measurement itself": (dict(MEASURED), "PASS", "with BN 0.880, without BN 0.100"),
    "within 0.10": ({"with BN": 0.80, "without BN": 0.18}, "PASS", "PASS"),
    "a function returning the dict": (lambda: dict(MEASURED), "PASS", "PASS"),
    "between 0.10 and 0.20 off": ({"with BN": 0.73, "without BN": 0.10}, "CLOSE",
                                  "BN rescales every layer"),
    "no-BN far off": ({"with BN": 0.88, "without BN": 0.60}, "FAIL", "sits at chance"),
    "BN far off": ({"with BN": 0.30, "without BN": 0.10}, "FAIL", "BN rescales every layer"),
    "the two numbers swapped": ({"with BN": 0.10, "without BN": 0.88}, "FAIL", "swapped"),
    "percent instead of [0, 1]": ({"with BN": 88, "without BN": 10}, "FAIL",
                                  "fractions in [0, 1]"),
    "one value in percent": ({"with BN": 90, "without BN": 0.1}, "FAIL", "fractions in [0, 1]"),
    "negative accuracy": ({"with BN": 0.9, "without BN": -0.1}, "FAIL", "not an accuracy"),
    "above 100": ({"with BN": 0.9, "without BN": 120}, "FAIL", "not an accuracy"),
    "lower-case keys": ({"with bn": 0.9, "without bn": 0.1}, "FAIL", "spelt exactly"),
    "other keys": ({"BN": 0.9, "no BN": 0.1}, "FAIL", "use exactly the two keys"),
    "one key missing": ({"with BN": 0.9}, "FAIL", "lacks ['without BN']"),
    "numbers as strings": ({"with BN": "0.9", "without BN": "0.1"}, "FAIL", "without quotes"),
    "NaN": ({"with BN": float("nan"), "without BN": 0.1}, "FAIL", "finite accuracy"),
    "a list as a value": ({"with BN": [0.9], "without BN": 0.1}, "FAIL", "one number per network"),
    "None": (None, "FAIL", "fill in a dict"),
    "a string": ("0.9, 0.1", "FAIL", "not a dict"),
    "a tuple": ((0.9, 0.1), "FAIL", "not a dict"),
    "a function returning None": (lambda: None, "FAIL", RETURN_NONE_HINT),
    "a function not written yet": (lambda: (_ for _ in ()).throw(NotImplementedError()), "FAIL",
                                   "not implemented yet"),
}


@pytest.mark.parametrize("case", list(PREDICTION_TABLE))
def test_prediction_mistake_table(case, capsys):
    answer, status, hint = PREDICTION_TABLE[case]
    verdict, line = one_line(capsys, bnh.checks.check_prediction, answer, RESULT)
    assert verdict.status == status, line
    assert hint in line, line
    assert line.startswith("predict, then run | ")


@pytest.mark.parametrize("result", [None, "fig1", {"bn": 1}, np.zeros(3),
                                    {"with BN": 1, "without BN": 2}])
def test_prediction_with_a_wrong_result(result, capsys):
    verdict, line = one_line(capsys, bnh.checks.check_prediction, dict(MEASURED), result)
    assert verdict.status == "FAIL" and "bnh.fit_many" in line, line


def test_prediction_at_a_step_that_was_not_evaluated(capsys):
    verdict, line = one_line(capsys, bnh.checks.check_prediction, dict(MEASURED), RESULT, step=500)
    assert verdict.status == "FAIL" and "no evaluation at step 500" in line, line


def test_prediction_uses_the_seed_median_at_the_given_step(capsys):
    _, line = one_line(capsys, bnh.checks.check_prediction, {"with BN": 0.1, "without BN": 0.1},
                       RESULT, step=0)
    assert "after 0 steps" in line and "PASS" in line, line


# ---- exercise 2: summarize(p) -> (median_range, spread_start, spread_end) ----

def good(p):
    return p[:, 1].max() - p[:, 1].min(), p[0, 2] - p[0, 0], p[-1, 2] - p[-1, 0]


def _raise(err):
    def fn(p):
        raise err
    return fn


SUMMARY_TABLE = {
    "std instead of range": (lambda p: (p[:, 1].std(),) + good(p)[1:], "not its standard deviation"),
    "median from the 15th column": (lambda p: (np.ptp(p[:, 0]),) + good(p)[1:], "not p[:, 0]"),
    "median from the 85th column": (lambda p: (np.ptp(p[:, 2]),) + good(p)[1:], "not p[:, 2]"),
    "a row instead of a column": (lambda p: (np.ptp(p[1]),) + good(p)[1:], "not the row p[1]"),
    "last minus first": (lambda p: (p[-1, 1] - p[0, 1],) + good(p)[1:], "not last minus first"),
    "first and last swapped": (lambda p: (good(p)[0], good(p)[2], good(p)[1]), "you swapped them"),
    "85th minus 50th": (lambda p: (good(p)[0], p[0, 2] - p[0, 1], p[-1, 2] - p[-1, 1]),
                        "not 85th - 50th"),
    "50th minus 15th": (lambda p: (good(p)[0], p[0, 1] - p[0, 0], p[-1, 1] - p[-1, 0]),
                        "not 50th - 15th"),
    "15th minus 85th": (lambda p: (good(p)[0], p[0, 0] - p[0, 2], p[-1, 0] - p[-1, 2]), "sign"),
    "columns read as rows": (lambda p: (good(p)[0], p[2, 0] - p[0, 0], p[2, -1] - p[0, -1]),
                             "not p[2, 0] - p[0, 0]"),
    "order of the three numbers": (lambda p: good(p)[::-1], "in the order"),
    "a hard-coded answer": (lambda p: (1.2, 2.0, 2.3), "compute each of the three numbers"),
    "percent of something": (lambda p: tuple(100 * v for v in good(p)),
                             "compute each of the three numbers"),
    "forgot return": (lambda p: None, RETURN_NONE_HINT),
    "a string": (lambda p: "1, 2, 3", "return an array"),
    "a dict": (lambda p: {"median_range": 1.0}, "return a tuple of three numbers"),
    "two numbers": (lambda p: good(p)[:2], "return three numbers"),
    "NaN": (lambda p: (np.nan, 1.0, 2.0), "NaN"),
    "raises": (_raise(IndexError("index 3 is out of bounds")), "IndexError"),
    "not implemented": (_raise(NotImplementedError()), "not implemented yet"),
    "not a function": (np.array([1.0, 2.0, 3.0]), "pass the function itself"),
}


def test_summary_reference_passes(capsys):
    verdict, line = one_line(capsys, bnh.checks.check_percentile_summary, good)
    assert verdict.status == "PASS", line
    verdict, line = one_line(capsys, bnh.checks.check_percentile_summary,
                             bnh.paper_experiment.percentile_summary)
    assert verdict.status == "PASS", line


@pytest.mark.parametrize("case", list(SUMMARY_TABLE))
def test_summary_mistake_table(case, capsys):
    fn, hint = SUMMARY_TABLE[case]
    verdict, line = one_line(capsys, bnh.checks.check_percentile_summary, fn)
    assert verdict.status == "FAIL", line
    assert hint in line, line
    assert line.startswith("percentile summary | ")


def test_summary_grading_mode_adds_cases(monkeypatch, capsys):
    calls = []

    def counting(p):
        calls.append(p.shape)
        return good(p)

    bnh.checks.check_percentile_summary(counting)
    visible = list(calls)
    calls.clear()
    monkeypatch.setenv("BN_GRADING", "1")
    verdict, line = one_line(capsys, bnh.checks.check_percentile_summary, counting)
    assert verdict.status == "PASS", line
    assert len(calls) > len(visible) and len({s[0] for s in calls}) > 3


def test_percentile_summary_rejects_bad_shapes():
    with pytest.raises(ValueError, match="`p`"):
        bnh.paper_experiment.percentile_summary(np.zeros((4, 2)))


# ---- the student copy of notebook 06 ----

@pytest.fixture(scope="module")
def student_cells(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    subprocess.run([sys.executable, str(ROOT / "tools" / "student_copy.py"), str(NOTEBOOK),
                    "--out", str(out)], check=True, capture_output=True)
    nb = nbformat.read(out / NOTEBOOK.name, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code"]


def test_student_copy_is_valid_python(student_cells):
    for i, src in enumerate(student_cells):
        lines = [ln[: len(ln) - len(ln.lstrip())] + "pass" if ln.lstrip().startswith(("%", "!"))
                 else ln for ln in src.splitlines()]  # IPython magics are not Python
        ast.parse("\n".join(lines), filename=f"student cell {i}")
    joined = "\n".join(student_cells)
    assert joined.count("raise NotImplementedError") == 2
    assert "### BEGIN SOLUTION" not in joined


def test_student_exercises_run_and_fall_back(student_cells):
    """The two exercise cells of the student copy run: FAIL 'not implemented yet', then the
    reference is used with a printed note (a reduced training run stands in for the notebook's)."""
    cells = [s for s in student_cells if "check_prediction" in s or "check_percentile_summary" in s]
    assert len(cells) == 2
    rng = np.random.default_rng(0)
    x = (rng.random((200, 784)) > 0.5).astype(np.float32)
    y = rng.integers(0, 10, 200)
    digits = (x, y, x[:100], y[:100])
    runs = {}
    for name, bn in (("without BN", None), ("with BN", "before")):
        net = bnh.MLP(bnh.paper_experiment.SIZES, activation="sigmoid", bn=bn, init_std=0.01,
                      init="gaussian", momentum=0.99)
        runs[name] = bnh.fit_many(net, digits, key=jax.random.PRNGKey(0), lr=0.5, seeds=[0, 1, 2],
                                  num_steps=20, eval_every=10, train_eval=50,
                                  probe=bnh.paper_experiment.percentile_probe(net),
                                  probe_inputs=x[:50])
    namespace = {"bnh": bnh, "np": np, "jax": jax, "digits": digits, "K": 3, "SEEDS": (0, 1, 2),
                 "KEY": jax.random.PRNGKey(0), "EXERCISE_STEPS": 250,
                 "band": bnh.paper_experiment.fmt_band, "runs": runs}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for src in cells:
            exec(compile(src, "student exercise", "exec"), namespace)  # noqa: S102
    text = out.getvalue()
    verdicts = [ln for ln in text.splitlines() if " | " in ln]
    assert len(verdicts) == 2 and all("| FAIL |" in ln and "not implemented yet" in ln
                                      for ln in verdicts), text
    assert "note: the cells below use the reference version instead of summarize" in text
    assert "median range" in text
