"""Claims of notebooks/00_start_here.ipynb, asserted on the notebook's own cells.

The cells that compute the claims are executed here (outside Jupyter, with the Agg backend and
the FAST step count), so the tests check exactly the numbers the text is written from.
"""

from __future__ import annotations

import pathlib

import matplotlib
import nbformat
import numpy as np
import pytest

matplotlib.use("Agg")

NOTEBOOK = pathlib.Path(__file__).parents[1] / "notebooks" / "00_start_here.ipynb"
# parameters, data and network, the slider figure, the measurements, their summary
CELLS = ("ba9c2952", "11bc3658", "3ec0568b", "aa65ebaf", "f1a2b3c4")
TRAIN_CELLS = ("97626d9b", "f1a2b3c5")


def _run(ids, ns):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cells = {c.id: c for c in nb.cells}
    for cid in ids:
        exec(compile(cells[cid].source, f"00_start_here:{cid}", "exec"), ns)  # noqa: S102
    return ns


@pytest.fixture(scope="module")
def ns():
    import matplotlib.pyplot as plt

    out = _run(CELLS, {"__name__": "nb00"})
    yield out
    plt.close("all")


def test_bn_output_std_is_set_by_eps_at_tiny_weights(ns):
    rows, eps = ns["rows"], ns["EPS"]
    assert eps == 1e-5
    tiny = rows[0.001]
    assert len(tiny["var"]) >= 3
    assert np.all(tiny["var"] < eps)                       # the batch variance is below eps
    assert np.all((tiny["var"] / eps > 0.1) & (tiny["var"] / eps < 0.2))   # "about a seventh"
    assert np.all((tiny["bn_std"] > 0.25) & (tiny["bn_std"] < 0.5))   # "about 0.36"
    np.testing.assert_allclose(tiny["bn_std"], tiny["predicted"], rtol=0.02)
    assert np.all(rows[0.01]["bn_std"] < 1.0) and np.all(rows[0.01]["bn_std"] > 0.95)
    for std in (1.0, 10.0):
        np.testing.assert_allclose(rows[std]["bn_std"], 1.0, atol=1e-3)
        assert np.all(rows[std]["var"] > 1e3 * eps)
    assert np.all(rows[std]["bn_mean"] < 1e-4)


def test_saturation_is_a_share_of_values_and_small_weights_stay_linear(ns):
    rows = ns["rows"]
    assert np.all((rows[1.0]["saturated"] > 40) & (rows[1.0]["saturated"] < 70))   # "most", ~53 %
    assert np.all(rows[10.0]["saturated"] > rows[1.0]["saturated"])
    # std 0.01: a narrow spike on the nearly linear part of the sigmoid (slope near 1/4)
    assert np.all(rows[0.01]["plain_std"] < 0.1)
    assert np.all(rows[0.01]["slope_min"] > 0.24)
    assert np.all(rows[0.01]["saturated"] == 0)


def test_histogram_marks_bins_above_its_cap(ns):
    live, marks, notes = ns["live"], ns["marks"], ns["notes"]
    live.controls["std"].value = 0.001
    x, _ = marks["without BN"].get_data()
    assert len(x) >= 1                                       # the 100 % spike is marked
    assert "tallest bin" in notes["without BN"].get_text()
    assert float(notes["without BN"].get_text().split()[2]) > ns["CAP"]
    assert "0.001" in ns["setting"].get_text()               # the figure names its setting
    live.controls["std"].value = 1.0
    assert notes["with BN"].get_text() == ""                 # nothing is cut at std 1
    assert "share of values" in live.readout.value
    assert live.error is None


def test_bn_trains_sooner_over_three_seeds():
    import matplotlib.pyplot as plt

    ns = _run(CELLS[:2], {"__name__": "nb00"})
    ns["TRAIN_STEPS"] = 300
    ns["med"] = lambda v, fmt=".3g": f"{np.median(v):{fmt}}"
    _run(TRAIN_CELLS, ns)
    plt.close("all")
    final = ns["final"]
    assert len(final["with BN"]) == 3
    assert np.all(final["with BN"] > 0.8)
    assert np.all(final["without BN"] < 0.2)              # near chance after 300 steps
    assert final["with BN"].min() > final["without BN"].max() + 0.5
    assert all(s is not None for s in ns["reach"]["with BN"])


def test_notebook_ends_with_references_and_has_no_false_claims():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert nb.cells[-1].cell_type == "markdown"
    assert nb.cells[-1].source.startswith("## References")
    assert "arxiv.org/abs/1502.03167" in nb.cells[-1].source
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "half the units" not in text
    assert "standard deviation 1 whatever the weight scale, and" not in text
    assert "standard-normal values when" not in text
    for c in nb.cells:   # solution markers on their own lines
        for line in c.source.splitlines():
            if "### BEGIN SOLUTION" in line or "### END SOLUTION" in line:
                assert line.strip() in ("### BEGIN SOLUTION", "### END SOLUTION")
