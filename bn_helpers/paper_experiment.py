"""Ioffe & Szegedy (2015) Figure 1 on the engine: what notebook 06 measures and how it reads it.

The networks are `bnh.MLP`s and every run is a `bnh.fit_many` call made in the
notebook. This module holds the rest: the probe that records Fig. 1(b, c) (the
15/50/85th percentiles of every input to a last-hidden-layer sigmoid, with BN in
*training* mode on a fixed probe batch, i.e. normalized by that batch's own
statistics, the paper's N_BN^tr), the read-outs of a `FitResult` (accuracy at a
step, steps to a target, diverged/stuck/trains, seed bands and comparisons),
the acceptance quantities and the paper's published numbers. The figures are in
`bn_helpers.figures.paper_experiment`.

Used in notebooks/06_paper_experiment.ipynb.
"""

from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["SIZES", "PERCENTILES", "percentile_probe", "take", "split_configs", "acc_at",
           "steps_to", "diverged", "status", "band", "fmt_band", "compare", "percentile_summary",
           "acceptance", "markdown_table", "PAPER_FIG1A", "REIMPLEMENTATIONS", "NUMPY_CHECK",
           "IMAGENET"]

SIZES = (784, 100, 100, 100, 10)   # the paper's network: 3 hidden layers of 100 sigmoid units
PERCENTILES = (15.0, 50.0, 85.0)


def _percentiles(z):
    """15/50/85th percentiles along axis 0 (linear interpolation, as np.percentile)."""
    n = z.shape[0]
    zs = jnp.sort(z, axis=0)
    out = []
    for q in PERCENTILES:
        pos = q / 100 * (n - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, n - 1)
        out.append(zs[lo] + (pos - lo) * (zs[hi] - zs[lo]))
    return jnp.stack(out)


@lru_cache(maxsize=None)
def percentile_probe(net, layer: int = -1):
    """The probe of Fig. 1(b, c) for `net`: probe(params, state, x) -> (3, units).

    Runs `net` on the probe batch `x` in training mode (BN normalizes with the
    batch statistics of `x`; the updated running statistics are thrown away)
    and returns the 15th, 50th and 85th percentile over the batch of each input
    to the nonlinearity of hidden layer `layer` (default: the last). Pass it to
    `bnh.fit_many(..., probe=..., probe_inputs=x)`; the same `net` gives the
    same function object, so the compiled run is reused.

    Used in notebooks/06_paper_experiment.ipynb.
    """
    if not hasattr(net, "apply") or not getattr(net, "sizes", None) or len(net.sizes) < 3:
        raise ValueError(f"`net` must be a bnh.MLP with a hidden layer, got {net!r}")

    def probe(params, state, x):
        _, _, hidden = net.apply(params, state, x, train=True, return_hidden=True)
        return _percentiles(hidden[layer]["pre"])

    return probe


# --- selecting runs of a fit_many result -----------------------------------------


def take(run, index):
    """The runs `index` (int array or boolean mask over the leading K axis) of a fit_many result.

    Used in notebooks/06_paper_experiment.ipynb.
    """
    index = np.asarray(index)
    if index.dtype == bool:
        index = np.flatnonzero(index)
    if not index.size:
        raise ValueError("`index` selects no run")
    fields = {f: jax.tree.map(lambda a: np.asarray(a)[index], getattr(run, f))
              for f in run._fields if f != "eval_steps" and getattr(run, f) is not None}
    return run._replace(**fields)


def split_configs(run, num_configs: int) -> list:
    """A sweep laid out as `np.tile(values, num_seeds)` -> one result per value, seeds on axis 0.

    Used in notebooks/06_paper_experiment.ipynb.
    """
    k = np.shape(run.test_acc)[0]
    if num_configs < 1 or k % num_configs:
        raise ValueError(f"`num_configs`={num_configs} does not divide the {k} runs")
    return [take(run, np.arange(j, k, num_configs)) for j in range(num_configs)]


# --- reading results ------------------------------------------------------------


def acc_at(run, step: int) -> np.ndarray:
    """Test accuracy (K,) at the evaluation `step` (it must be one of run.eval_steps).

    Used in notebooks/06_paper_experiment.ipynb.
    """
    steps = np.asarray(run.eval_steps)
    hits = np.flatnonzero(steps == step)
    if not hits.size:
        raise ValueError(f"`step`={step} is not an evaluation step; evaluations at "
                         f"{steps[:3].tolist()}...{steps[-1]}")
    return np.asarray(run.test_acc)[:, hits[0]]


def steps_to(run, target: float) -> np.ndarray:
    """First evaluation step (K,) at which test accuracy >= `target`; NaN if never.

    Used in notebooks/06_paper_experiment.ipynb.
    """
    if not 0.0 < target <= 1.0:
        raise ValueError(f"`target` must be in (0, 1], got {target}")
    reached = np.asarray(run.test_acc) >= target
    first = np.argmax(reached, axis=1)
    return np.where(reached.any(1), np.asarray(run.eval_steps)[first], np.nan)


def diverged(run) -> np.ndarray:
    """(K,) True where the loss became non-finite or its last tenth averages > 2x its first step.

    Used in notebooks/06_paper_experiment.ipynb.
    """
    loss = np.asarray(run.loss, dtype=np.float64)
    tail = loss[:, -max(1, loss.shape[1] // 10):]
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(loss).all(1) | (tail.mean(1) > 2 * loss[:, 0])


def status(run, *, stuck_below: float = 0.25) -> list:
    """'diverged', 'stuck' (final test accuracy < stuck_below) or 'trains', per run.

    Used in notebooks/06_paper_experiment.ipynb.
    """
    final = np.asarray(run.test_acc)[:, -1]
    return ["diverged" if d else "stuck" if not (a >= stuck_below) else "trains"
            for d, a in zip(diverged(run), final, strict=True)]


def band(values, axis: int = 0):
    """(median, min, max) across runs (axis 0 by default): a seed band.

    Used in notebooks/06_paper_experiment.ipynb.
    """
    a = np.asarray(values, dtype=np.float64)
    return np.median(a, axis=axis), a.min(axis=axis), a.max(axis=axis)


def fmt_band(values, digits: int = 3) -> str:
    """'median (min-max)' of a 1-D set of per-seed values, e.g. '0.912 (0.905-0.918)'.

    Used in notebooks/06_paper_experiment.ipynb.
    """
    med, lo, hi = band(np.ravel(values))
    return f"{med:.{digits}f} ({lo:.{digits}f}\u2013{hi:.{digits}f})"


def compare(a, b, names=("with BN", "without BN"), digits: int = 3) -> str:
    """One sentence comparing per-seed values a and b (same seeds, same order).

    Gives both seed bands, the difference of the medians, in how many seeds a
    is higher, and whether the seed ranges overlap: a result stated from the
    numbers of the run instead of in advance.

    Used in notebooks/06_paper_experiment.ipynb.
    """
    a, b = np.ravel(np.asarray(a, float)), np.ravel(np.asarray(b, float))
    if a.shape != b.shape or not a.size:
        raise ValueError(f"`a` and `b` must hold one value per seed each, got {a.shape}, {b.shape}")
    diff = float(np.median(a) - np.median(b))
    higher = int(np.sum(a > b))
    overlap = not (a.min() > b.max() or a.max() < b.min())
    return (f"{names[0]} {fmt_band(a, digits)} against {names[1]} {fmt_band(b, digits)}: "
            f"{names[0]} is {'higher' if diff > 0 else 'lower'} by {abs(diff):.{digits}f} in the "
            f"median, higher in {higher} of {a.size} seeds, and the seed ranges "
            f"{'overlap' if overlap else 'do not overlap'}")


def percentile_summary(p):
    """(median_range, spread_start, spread_end) of percentiles p (evaluations, 3: 15/50/85th).

    median_range: max - min of the median over training; a spread is the 85th minus the 15th
    percentile, at the first and at the last evaluation. The reference answer of exercise 2.

    Used in notebooks/06_paper_experiment.ipynb.
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or p.shape[0] < 1:
        raise ValueError(f"`p` must have shape (evaluations, 3), got {p.shape}")
    med = p[:, 1]
    return float(med.max() - med.min()), float(p[0, 2] - p[0, 0]), float(p[-1, 2] - p[-1, 0])


def acceptance(with_bn, without_bn, unit: int = 0) -> dict:
    """The acceptance quantities of Fig. 1, seed medians of the two networks' results.

    Returns {"bn"/"no_bn": {"acc_1k", "acc_3k", "acc_final", "median_range", "p15_0", "p85_0",
    "curve"}, "above_after_first": bool}; acc_1k / acc_3k are NaN if the run has no
    evaluation there. Both results need the percentile probe and the same evaluation steps.

    Used in notebooks/06_paper_experiment.ipynb and tests/test_paper_experiment.py.
    """
    if not np.array_equal(with_bn.eval_steps, without_bn.eval_steps):
        raise ValueError("`with_bn` and `without_bn` must share their evaluation steps")
    out = {}
    med = lambda a: float(np.median(a))  # noqa: E731
    for name, r in (("bn", with_bn), ("no_bn", without_bn)):
        if r.probe is None:
            raise ValueError(f"the {name} result has no percentiles (train with the probe)")
        p = np.asarray(r.probe)[:, :, :, unit]
        out[name] = {
            "acc_1k": med(acc_at(r, 1000)) if 1000 in r.eval_steps else np.nan,
            "acc_3k": med(acc_at(r, 3000)) if 3000 in r.eval_steps else np.nan,
            "acc_final": med(np.asarray(r.test_acc)[:, -1]),
            "median_range": med(np.ptp(p[:, :, 1], axis=1)),
            "p15_0": med(p[:, 0, 0]),
            "p85_0": med(p[:, 0, 2]),
            "curve": np.median(np.asarray(r.test_acc), axis=0),
        }
    out["above_after_first"] = bool(np.all(out["bn"]["curve"][1:] > out["no_bn"]["curve"][1:]))
    return out


def markdown_table(rows: list, columns=None) -> str:
    """A list of dicts as a Markdown table (display it with IPython.display.Markdown).

    Used in notebooks/06_paper_experiment.ipynb.
    """
    if not rows:
        raise ValueError("`rows` must hold at least one dict")
    columns = list(columns or rows[0].keys())
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


# --- published numbers (read off the paper's figures and tables) -----------------

# Fig. 1(a), read off by eye: step -> (with BN, without BN)
PAPER_FIG1A = {4000: (0.955, 0.71), 8000: (0.967, 0.907), 12000: (0.965, 0.94),
               16000: (0.975, 0.957), 20000: (0.975, 0.965), 30000: (0.978, 0.969),
               50000: (0.98, 0.9735)}

REIMPLEMENTATIONS = [
    {"repository": "Brandon-HY-Lin/deep_learning_comparision (TF1)", "optimizer": "SGD, lr 0.5",
     "init": "truncated normal, std 0.1", "budget": "50,000 steps, batch 60",
     "with BN": "0.9776 / 0.98", "without BN": "0.975 / 0.9769"},
    {"repository": "Al13n0231/batch-normalization-reproduction (PyTorch)",
     "optimizer": "SGD + momentum 0.9, lr 0.01", "init": "N(0, 0.01²)",
     "budget": "50,000 steps, batch 60", "with BN": "0.9815", "without BN": "0.9492"},
    {"repository": "tanjeffreyz/batch-normalization (PyTorch; scalar γ, β)",
     "optimizer": "Adam 1e-3",
     "init": "PyTorch default", "budget": "100 epochs, batch 128", "with BN": "0.9817",
     "without BN": "0.9714"},
]

# An independent NumPy implementation on MNIST-5k (3 seeds, init std 0.01, SGD lr 0.5, batch 60)
NUMPY_CHECK = {1000: ("0.878-0.889", "0.084"), 3000: ("0.90", "0.39-0.45"),
               6000: ("0.90-0.92", "0.79-0.85")}

IMAGENET = [
    {"model": "Inception", "initial LR": "0.0015", "steps to 72.2 %": "31.0·10⁶",
     "max accuracy": "72.2 %"},
    {"model": "BN-Baseline", "initial LR": "0.0015", "steps to 72.2 %": "13.3·10⁶",
     "max accuracy": "72.7 %"},
    {"model": "BN-x5", "initial LR": "0.0075", "steps to 72.2 %": "2.1·10⁶",
     "max accuracy": "73.0 %"},
    {"model": "BN-x30", "initial LR": "0.045", "steps to 72.2 %": "2.7·10⁶",
     "max accuracy": "74.8 %"},
    {"model": "BN-x5-Sigmoid", "initial LR": "0.0075", "steps to 72.2 %": "never",
     "max accuracy": "69.8 %"},
]
