"""Mistake tables for the checks of notebook 03 (bn_helpers/checks/init.py).

Each usual wrong answer gets FAIL (or at least not PASS) with the hint meant for it; the reference
solution gets PASS; every call prints exactly one line.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bn_helpers as bnh
from bn_helpers.checks import init as C
from bn_helpers.checks._core import RETURN_NONE_HINT


def one_line(capsys):
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def _normal(std):
    return lambda k, i, o: jax.random.normal(k, (i, o)) * std(i, o)


def _uniform(limit):
    return lambda k, i, o: jax.random.uniform(k, (i, o), minval=-1, maxval=1) * limit(i, o)


def _todo(*args):
    raise NotImplementedError


def _boom(*args):
    raise ValueError("boom")


# --- Exercise 1: Xavier and He init -------------------------------------------------------

XAVIER_MISTAKES = {
    "He's formula": (_normal(lambda i, o: np.sqrt(2 / i)), "He's init"),
    "LeCun's formula": (_normal(lambda i, o: np.sqrt(1 / i)), "LeCun"),
    "variance instead of std": (_normal(lambda i, o: 2 / (i + o)), "the variance 2/(fan_in+fan_out)"),
    "fan_out only": (_normal(lambda i, o: np.sqrt(2 / o)), "fan_out"),
    "factor 2 missing": (_normal(lambda i, o: np.sqrt(1 / (i + o))), "factor 2 is missing"),
    "uniform limit = std": (_uniform(lambda i, o: np.sqrt(2 / (i + o))), "a uniform's std"),
    "uniform(0, a), not centred": (
        lambda k, i, o: jax.random.uniform(k, (i, o)) * np.sqrt(6 / (i + o)), "mean 0"),
    "same weights for every key": (lambda k, i, o: jnp.ones((i, o)) * 0.05, "same weights"),
    "transposed shape": (lambda k, i, o: jax.random.normal(k, (o, i)) * np.sqrt(2 / (i + o)),
                         "expected"),
    "forgot return": (lambda k, i, o: None, RETURN_NONE_HINT),
    "not implemented": (_todo, "not implemented"),
    "raises": (_boom, "ValueError"),
    "returns a string": (lambda k, i, o: "W", "return an array"),
    "returns NaN": (lambda k, i, o: jnp.full((i, o), jnp.nan), "NaN"),
    "not a function": (np.ones((3, 3)), "expected a function"),
}

HE_MISTAKES = {
    "Glorot's formula": (_normal(lambda i, o: np.sqrt(2 / (i + o))), "Glorot"),
    "LeCun's formula": (_normal(lambda i, o: np.sqrt(1 / i)), "LeCun"),
    "variance instead of std": (_normal(lambda i, o: 2 / i), "the variance 2/fan_in"),
    "fan_out instead of fan_in": (_normal(lambda i, o: np.sqrt(2 / o)), "fan_out instead of fan_in"),
    "uniform limit = std": (_uniform(lambda i, o: np.sqrt(2 / i)), "a uniform's std"),
    "forgot return": (lambda k, i, o: None, RETURN_NONE_HINT),
    "a tuple": (lambda k, i, o: (1.0, 2.0), "expected"),
}


@pytest.mark.parametrize("case", list(XAVIER_MISTAKES))
def test_xavier_mistakes(case, capsys):
    fn, hint = XAVIER_MISTAKES[case]
    v = bnh.checks.check_xavier_init(fn)
    line = one_line(capsys)
    assert v.status == "FAIL", line
    assert hint in line, line


@pytest.mark.parametrize("case", list(HE_MISTAKES))
def test_he_mistakes(case, capsys):
    fn, hint = HE_MISTAKES[case]
    v = bnh.checks.check_he_init(fn)
    line = one_line(capsys)
    assert v.status == "FAIL", line
    assert hint in line, line


def test_init_references_pass(capsys):
    assert bnh.checks.check_xavier_init(_normal(lambda i, o: np.sqrt(2 / (i + o))))
    assert bnh.checks.check_xavier_init(_uniform(lambda i, o: np.sqrt(6 / (i + o))))  # Glorot's
    assert bnh.checks.check_he_init(_normal(lambda i, o: np.sqrt(2 / i)))
    assert bnh.checks.check_he_init(_uniform(lambda i, o: np.sqrt(6 / i)))
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and all(ln.endswith("PASS") for ln in out), out


def test_init_tolerance_separates_every_mistake():
    """The nearest wrong formula is >= 10 % away on one of the shapes; PASS needs <= 3 %."""
    for target in (C._XAVIER, C._HE):
        tables = [C.init_formulas(i, o, target) for i, o in C._SHAPES]
        for key in tables[0]:
            if key == target:
                continue
            gap = max(abs(t[key] - t[target]) / t[target] for t in tables)
            assert gap >= 0.1, (target, key, gap)


def test_init_hidden_cases(monkeypatch, capsys):
    monkeypatch.setenv("BN_GRADING", "1")
    assert bnh.checks.check_he_init(_normal(lambda i, o: np.sqrt(2 / i)))
    # a function that only works for the visible shapes fails the hidden ones
    visible = _normal(lambda i, o: np.sqrt(2 / i))

    def only_visible(k, i, o):
        return visible(k, i, o) if (i, o) in C._SHAPES else jnp.zeros((i, o))

    assert not bnh.checks.check_he_init(only_visible)
    capsys.readouterr()


# --- Exercise 2: predicting the std ---------------------------------------------------------


def reference(q, s, n, layer):
    ### the notebook's solution
    var_z1 = s ** 2 * q
    per_layer = 0.5 * n * s ** 2
    return float(np.sqrt(var_z1 * per_layer ** (layer - 1)))


PREDICT_MISTAKES = {
    "off by one (layer factors)": (
        lambda q, s, n, d: np.sqrt(s ** 2 * q * (0.5 * n * s ** 2) ** d),
        "layer 1 already gets its own s^2"),
    "off by one (layer - 2 factors)": (
        lambda q, s, n, d: np.sqrt(s ** 2 * q * (0.5 * n * s ** 2) ** (d - 2)),
        "off by one layer the other way"),
    "start from variance 1": (
        lambda q, s, n, d: np.sqrt((0.5 * n * s ** 2) ** (d - 1)), "starting from variance 1"),
    "start from 784 s^2": (
        lambda q, s, n, d: np.sqrt(784 * s ** 2 * (0.5 * n * s ** 2) ** (d - 1)), "784"),
    "forgot the ReLU's 1/2": (
        lambda q, s, n, d: np.sqrt(s ** 2 * q * (n * s ** 2) ** (d - 1)), "factor 1/2"),
    "std instead of std^2 per layer": (
        lambda q, s, n, d: np.sqrt(s ** 2 * q * (0.5 * n * s) ** (d - 1)), "std instead of std^2"),
    "returned the variance": (
        lambda q, s, n, d: s ** 2 * q * (0.5 * n * s ** 2) ** (d - 1), "variance"),
    "hard-coded the visible answer": (lambda q, s, n, d: reference(90.0, 0.2, 128, 6),
                                      "the same value for every network"),
    "forgot return": (lambda q, s, n, d: None, RETURN_NONE_HINT),
    "not implemented": (_todo, "not implemented"),
    "returns a string": (lambda q, s, n, d: "20", "single number"),
    "returns an array": (lambda q, s, n, d: np.ones(3), "single number"),
    "returns NaN": (lambda q, s, n, d: float("nan"), "finite"),
    "negative": (lambda q, s, n, d: -reference(q, s, n, d), "positive"),
    "raises": (_boom, "ValueError"),
    "a number, not a function": (19.9, "expected a function"),
}


@pytest.mark.parametrize("case", list(PREDICT_MISTAKES))
def test_std_prediction_mistakes(case, capsys):
    fn, hint = PREDICT_MISTAKES[case]
    v = bnh.checks.check_std_prediction(fn)
    line = one_line(capsys)
    assert v.status == "FAIL", line
    assert hint in line, line


def test_std_prediction_reference_passes(capsys):
    assert bnh.checks.check_std_prediction(reference)
    assert bnh.checks.check_std_prediction(C.reference_std)
    # float32 arithmetic is fine too
    assert bnh.checks.check_std_prediction(
        lambda q, s, n, d: jnp.sqrt(jnp.float32(s) ** 2 * q * (0.5 * n * jnp.float32(s) ** 2)
                                    ** (d - 1)))
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and all(ln.endswith("PASS") for ln in out), out


def test_std_prediction_tolerance_separates_the_mistakes():
    """Off-by-one and the variance-1 start are far outside CLOSE (2 %) on every case."""
    cases = ((90.0, 0.2, 128, 6),) + C._PREDICT_CASES + C._PREDICT_HIDDEN
    for case in cases:
        right = C.reference_std(*case)
        for key, value in C.predict_mistakes(*case).items():
            assert abs(value - right) / right > 0.25, (case, key)


def test_std_prediction_hidden_cases(monkeypatch, capsys):
    monkeypatch.setenv("BN_GRADING", "1")
    assert bnh.checks.check_std_prediction(reference)
    visible = {(90.0, 0.2, 128, 6), *C._PREDICT_CASES}

    def cheat(q, s, n, d):
        return reference(q, s, n, d) if (q, s, n, d) in visible else 1.0

    assert not bnh.checks.check_std_prediction(cheat)
    capsys.readouterr()


def test_visible_network_is_not_one_of_the_figures():
    """Exercise 2's network differs from the variance figure's (width 256, std 0.1, 30 layers)."""
    p = C.PREDICT
    assert (p["width"], p["std"]) != (256, 0.1) and p["width"] != bnh.init.WIDTH


# --- Exercise 3: reading histograms ---------------------------------------------------------


def test_quiz_is_shuffled():
    truth = C.quiz_truth()
    text_order = ["xavier", "small", "large"]      # the order the exercise lists the inits in
    assert [truth[k] for k in "ABC"] != text_order
    assert sorted(truth.values()) == sorted(text_order)
    # the shuffle comes from the explicit seed
    order = np.random.default_rng(bnh.init.QUIZ_SEED).permutation(3)
    assert [bnh.init.QUIZ[k] for k in "ABC"] == [bnh.init.QUIZ_INITS[i] for i in order]


RIGHT = C.quiz_truth()
WRONG = {k: v for k, v in zip("ABC", ["xavier", "small", "large"], strict=True)}

HIST_MISTAKES = {
    "the unshuffled order": (WRONG, "wrong labels"),
    "None": (None, "fill in"),
    "a string": ("xavier, small, large", "not a dict"),
    "a list": (["xavier", "small", "large"], "not a dict"),
    "a tuple": (("xavier", "small", "large"), "not a dict"),
    "missing letter": ({"A": RIGHT["A"]}, "expected ['A', 'B', 'C']"),
    "extra letter": ({**RIGHT, "D": "small"}, "expected ['A', 'B', 'C']"),
    "unknown label": ({**RIGHT, "A": "medium"}, "one of"),
    "a number as label": ({**RIGHT, "B": 1}, "one of"),
    "None as label": ({**RIGHT, "C": None}, "one of"),
    "a label twice": ({"A": "small", "B": "small", "C": "large"}, "used twice"),
}


@pytest.mark.parametrize("case", list(HIST_MISTAKES))
def test_histogram_reading_mistakes(case, capsys):
    answer, hint = HIST_MISTAKES[case]
    v = bnh.checks.check_histogram_reading(answer)
    line = one_line(capsys)
    assert v.status == "FAIL", line
    assert hint in line, line


def test_histogram_reading_names_each_wrong_letter(capsys):
    bnh.checks.check_histogram_reading(WRONG)
    line = one_line(capsys)
    for k in "ABC":
        assert (f"{k}:" in line) == (WRONG[k] != RIGHT[k]), line


def test_histogram_reading_reference_passes(capsys):
    assert bnh.checks.check_histogram_reading(RIGHT)
    # case, spaces, lowercase letters and the synonym "glorot" are accepted
    loose = {k.lower(): (" Glorot " if v == "xavier" else v.upper()) for k, v in RIGHT.items()}
    assert bnh.checks.check_histogram_reading(loose)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and all(ln.endswith("PASS") for ln in out), out
