"""Ioffe & Szegedy (2015) Figure 1 reproduced: the sigmoid MLP with and without BN, one computation.

`run` trains several configurations of the paper's network (784-100-100-100-10,
sigmoid, plain SGD) in ONE jitted, vmapped `lax.scan`. Unlike `bnh.fit_many`,
BN on/off is carried as data (a per-run flag), so the network with BN and
the one without train side by side with a shared batch order, next to sweeps
over learning rate, init std and seed. At every evaluation it records test
accuracy (BN with population statistics, Algorithm 2), accuracy on a fixed
slice of the training set and the 15/50/85th percentiles of every layer-3
sigmoid input on a fixed batch in *training* mode (the paper's N_BN^tr).

The module also holds the paper's read-off numbers, the public
re-implementations' numbers and the ImageNet table (reference cards A1, A3)
and the figures of notebook 06.

Used in notebooks/06_paper_experiment.ipynb.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import plots as _plots
from . import widgets as _widgets
from .train import batch_indices

__all__ = ["SIZES", "PaperResult", "run", "steps_to", "acc_at", "acceptance",
           "status", "pick", "band", "fmt_band", "compare", "percentile_summary", "XAVIER_COLOR",
           "PAPER_FIG1A", "REIMPLEMENTATIONS", "NUMPY_CHECK", "IMAGENET",
           "markdown_table",
           "plot_fig1", "init_std_slider", "lr_slider"]

SIZES = (784, 100, 100, 100, 10)
PERCENTILES = (15.0, 50.0, 85.0)
INITS = ("gaussian", "xavier")
# The tuned baseline (Xavier init, no BN) gets its own colour: one colour, one meaning
XAVIER_COLOR = _plots.PALETTE["green"]


class PaperResult(NamedTuple):
    """Outcome of `run`; K runs, E evaluations (step 0 included), S steps.

    steps (E,); test_acc, train_acc (K, E) (train_acc on the first `train_eval`
    training examples); percentiles (K, E, 3, U): 15/50/85th percentile of each
    unit of the last hidden layer's sigmoid input, training mode, fixed batch;
    loss (K, S); final_train_acc (K,) on the whole training set; the run
    settings bn, lr, init_std, seed, init ("gaussian" or "xavier") (K,); diverged (K,).
    """

    steps: np.ndarray
    test_acc: np.ndarray
    train_acc: np.ndarray
    percentiles: np.ndarray
    loss: np.ndarray
    final_train_acc: np.ndarray
    bn: np.ndarray
    lr: np.ndarray
    init_std: np.ndarray
    seed: np.ndarray
    diverged: np.ndarray
    batch_size: int
    init: np.ndarray = np.array(["gaussian"])

    def select(self, mask) -> "PaperResult":
        """The runs where `mask` (K,) is True."""
        mask = np.asarray(mask)
        return self._replace(**{f: getattr(self, f)[mask] for f in self._fields
                                if f not in ("steps", "batch_size")})



# --- the network, with BN as a per-run flag -------------------------------------


def _init(key, std, xavier, sizes):
    """N(0, std²) weights, or Glorot & Bengio's Var = 2 / (fan_in + fan_out) if `xavier`."""
    keys = jax.random.split(key, len(sizes) - 1)
    params, state = [], []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        scale = jnp.where(xavier, np.sqrt(2.0 / (a + b)), std)
        layer = {"W": scale * jax.random.normal(keys[i], (a, b)), "b": jnp.zeros(b)}
        if i < len(sizes) - 2:
            layer["gamma"], layer["beta"] = jnp.ones(b), jnp.zeros(b)
            state.append({"mean": jnp.zeros(b), "var": jnp.ones(b)})
        params.append(layer)
    return params, state


def _forward(params, state, x, flag, *, train, momentum, eps):
    """(logits, new_state, last hidden layer's sigmoid input). flag=True: BN before each sigmoid.

    Both branches are computed and `where` picks one, so one vmapped program
    serves both networks. With BN the bias is not used (beta replaces it).
    """
    h, new_state, z = x, [], None
    for layer, st in zip(params[:-1], state, strict=True):
        z = h @ layer["W"]
        if train:
            mean = jnp.mean(z, 0)
            var = jnp.mean(jnp.square(z - mean), 0)
            m = z.shape[0]
            st = {"mean": momentum * st["mean"] + (1 - momentum) * jax.lax.stop_gradient(mean),
                  "var": momentum * st["var"]
                  + (1 - momentum) * jax.lax.stop_gradient(var) * (m / (m - 1))}
        else:
            mean, var = st["mean"], st["var"]
        z_bn = (z - mean) * (layer["gamma"] * jax.lax.rsqrt(var + eps)) + layer["beta"]
        z = jnp.where(flag, z_bn, z + layer["b"])
        new_state.append(st)
        h = jax.nn.sigmoid(z)
    return h @ params[-1]["W"] + params[-1]["b"], new_state, z


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


def _xent(logits, y):
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def _one_run(flag, lr, std, xavier, init_key, idx, x_train, y_train, x_test, y_test, x_probe, *,
             sizes, eval_every, train_eval, momentum, eps):
    fwd = partial(_forward, momentum=momentum, eps=eps)
    params, state = _init(init_key, std, xavier, sizes)

    def loss_fn(params, state, xb, yb):
        logits, new_state, _ = fwd(params, state, xb, flag, train=True)
        return _xent(logits, yb), new_state

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def step(carry, batch):
        params, state = carry
        (loss, state), grads = grad_fn(params, state, *batch)
        params = jax.tree.map(lambda p, g: p - lr * g, params, grads)
        return (params, state), loss

    def acc(params, state, x, y):
        logits, _, _ = fwd(params, state, x, flag, train=False)
        return jnp.mean(jnp.argmax(logits, -1) == y)

    def measure(params, state):
        _, _, z = fwd(params, state, x_probe, flag, train=True)  # N_BN^tr: batch statistics
        pct = _percentiles(z)  # (3, units)
        return (acc(params, state, x_test, y_test),
                acc(params, state, x_train[:train_eval], y_train[:train_eval]), pct)

    def chunk(carry, chunk_idx):
        carry, losses = jax.lax.scan(step, carry, (x_train[chunk_idx], y_train[chunk_idx]))
        return carry, (losses, measure(*carry))

    first = measure(params, state)
    num_chunks = idx.shape[0] // eval_every
    (params, state), (losses, evals) = jax.lax.scan(
        chunk, (params, state), idx.reshape(num_chunks, eval_every, -1))
    evals = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, evals)
    final_train = acc(params, state, x_train, y_train)
    return losses.reshape(-1), evals, final_train


@partial(jax.jit, static_argnames=("sizes", "eval_every", "train_eval", "momentum", "eps"))
def _run_jit(flags, lrs, stds, xaviers, init_keys, idx, x_train, y_train, x_test, y_test, x_probe, *,
             sizes, eval_every, train_eval, momentum, eps):
    fn = partial(_one_run, sizes=sizes, eval_every=eval_every, train_eval=train_eval,
                 momentum=momentum, eps=eps)
    in_axes = (0, 0, 0, 0, 0) + (None,) * 6
    return jax.vmap(fn, in_axes=in_axes)(flags, lrs, stds, xaviers, init_keys, idx, x_train, y_train,
                                         x_test, y_test, x_probe)


def _broadcast(**kw):
    """Broadcast scalars and 1-D sequences to one length K; errors name the argument."""
    arrays = {}
    for name, v in kw.items():
        a = np.asarray(v)
        if a.ndim > 1:
            raise ValueError(f"`{name}` must be a scalar or a 1-D sequence, got shape {a.shape}")
        arrays[name] = a
    lengths = {name: a.shape[0] for name, a in arrays.items() if a.ndim == 1}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"sequence arguments must share one length, got {lengths}")
    k = next(iter(lengths.values()), 1)
    return {name: np.broadcast_to(a, (k,)) for name, a in arrays.items()}


def run(data, *, bn=(False, True), lr=0.5, init_std=0.01, seed=0, init="gaussian",
        num_steps: int = 3000,
        batch_size: int = 60, eval_every: int = 250, key: int = 0, sizes=SIZES,
        momentum: float = 0.99, eps: float = 1e-5, probe_examples: int = 1000,
        train_eval: int = 1000, _compiled=None) -> PaperResult:
    """Train K sigmoid MLPs (plain SGD) in one vmapped computation and record Fig. 1's quantities.

    data: (x_train, y_train, x_test, y_test) or a `bnh.data` Dataset.
    bn, lr, init_std, seed, init: scalars or 1-D sequences of one length K
    (scalars are shared); bn=True puts BN before every sigmoid. init="gaussian"
    draws N(0, init_std²) weights; init="xavier" ignores init_std and uses
    Glorot & Bengio's (2010, eq. 12) Var[W] = 2 / (fan_in + fan_out), a Gaussian
    with std 0.048, 0.1, 0.1 and 0.135 for this network's layers. Runs with the same seed
    and init_std start from the same weights. All runs see the same batches,
    drawn from `key`. momentum: weight of the old value in BN's running
    averages (0.99 as in card A1's calibration). The percentiles are taken
    over the first `probe_examples` test images, in training mode.

    Used in notebooks/06_paper_experiment.ipynb.
    """
    if hasattr(data, "x_train"):
        data = (data.x_train, data.y_train, data.x_test, data.y_test)
    if len(data) < 4:
        raise ValueError("`data` must be (x_train, y_train, x_test, y_test) or a Dataset")
    x_train, y_train, x_test, y_test = (np.asarray(a) for a in data[:4])
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 3 or min(sizes) < 1:
        raise ValueError(f"`sizes` needs inputs, at least one hidden layer and outputs, "
                         f"got {sizes}")
    if x_train.ndim != 2 or x_train.shape[1] != sizes[0]:
        raise ValueError(f"`data`: x_train must be (N, {sizes[0]}), got {x_train.shape}")
    if not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
        raise ValueError(f"`num_steps` must be a positive integer, got {num_steps!r}")
    if not isinstance(eval_every, (int, np.integer)) or eval_every < 1:
        raise ValueError(f"`eval_every` must be a positive integer, got {eval_every!r}")
    eval_every = min(eval_every, num_steps)
    if num_steps % eval_every:
        raise ValueError(f"`num_steps`={num_steps} must be a multiple of `eval_every`={eval_every}")
    if not 2 <= batch_size <= len(x_train):
        raise ValueError(f"`batch_size` must be in [2, {len(x_train)}], got {batch_size}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"`momentum` must be in [0, 1), got {momentum}")
    args = _broadcast(bn=bn, lr=lr, init_std=init_std, seed=seed, init=init)
    if not np.isin(args["init"], INITS).all():
        raise ValueError(f"`init` must be one of {INITS} or a sequence of them, got {init!r}")
    if args["bn"].dtype != bool:
        raise ValueError(f"`bn` must be True/False or a sequence of them, got {bn!r}")
    if np.any(args["lr"] <= 0) or not np.all(np.isfinite(args["lr"])):
        raise ValueError(f"`lr` must be positive and finite, got {lr!r}")
    if np.any(args["init_std"] <= 0):
        raise ValueError(f"`init_std` must be positive, got {init_std!r}")
    probe_examples = min(int(probe_examples), len(x_test))
    train_eval = min(int(train_eval), len(x_train))

    idx = batch_indices(jax.random.PRNGKey(key), len(x_train), batch_size, num_steps)
    init_keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(args["seed"], jnp.int32))
    arrays = (jnp.asarray(args["bn"]), jnp.asarray(args["lr"], jnp.float32),
              jnp.asarray(args["init_std"], jnp.float32),
              jnp.asarray(args["init"] == "xavier"), init_keys, idx,
              jnp.asarray(x_train, jnp.float32), jnp.asarray(y_train, jnp.int32),
              jnp.asarray(x_test, jnp.float32), jnp.asarray(y_test, jnp.int32),
              jnp.asarray(x_test[:probe_examples], jnp.float32))
    static = dict(sizes=sizes, eval_every=int(eval_every), train_eval=train_eval,
                  momentum=float(momentum), eps=float(eps))
    if _compiled is not None:  # benchmarks: (arrays, static) only, or a compiled function
        if _compiled == "prepare":
            return arrays, static
        out = _compiled(*arrays)
    else:
        out = _run_jit(*arrays, **static)
    losses, (test_acc, train_acc, pct), final_train = out
    loss = np.asarray(losses)
    tail = loss[:, -max(1, num_steps // 10):]
    # Diverged: a non-finite loss, or a late loss above twice the loss at the start
    with np.errstate(invalid="ignore"):
        diverged = ~np.isfinite(loss).all(1) | (tail.mean(1) > 2 * loss[:, :1].mean(1))
    return PaperResult(np.arange(0, num_steps + 1, eval_every), np.asarray(test_acc),
                       np.asarray(train_acc), np.asarray(pct),
                       loss, np.asarray(final_train), args["bn"].copy(), args["lr"].copy(),
                       args["init_std"].copy(), args["seed"].copy(), diverged, int(batch_size),
                       args["init"].astype(str).copy())


# --- reading results ------------------------------------------------------------


def acc_at(result: PaperResult, step: int) -> np.ndarray:
    """Test accuracy (K,) at the evaluation `step` (it must be one of result.steps).

    Used in notebooks/06_paper_experiment.ipynb.
    """
    hits = np.flatnonzero(result.steps == step)
    if not hits.size:
        raise ValueError(f"`step`={step} is not an evaluation step; evaluations at "
                         f"{result.steps[:3].tolist()}...{result.steps[-1]}")
    return result.test_acc[:, hits[0]]


def steps_to(result: PaperResult, target: float) -> np.ndarray:
    """First evaluation step (K,) at which test accuracy >= `target`; NaN if never.

    Used in notebooks/06_paper_experiment.ipynb.
    """
    if not 0.0 < target <= 1.0:
        raise ValueError(f"`target` must be in (0, 1], got {target}")
    reached = result.test_acc >= target
    first = np.argmax(reached, axis=1)
    return np.where(reached.any(1), result.steps[first], np.nan)


def pick(result: PaperResult, **settings) -> PaperResult:
    """The runs whose settings match, e.g. pick(r, bn=True, init="xavier", lr=0.5).

    Keys: bn, lr, init_std, seed, init; floats are compared with a relative
    tolerance of 1e-6. Raises if no run matches.

    Used in notebooks/06_paper_experiment.ipynb.
    """
    mask = np.ones(len(result.bn), bool)
    for name, value in settings.items():
        if name not in ("bn", "lr", "init_std", "seed", "init"):
            raise ValueError(f"`{name}` is not a run setting (bn, lr, init_std, seed, init)")
        field = getattr(result, name)
        if name in ("lr", "init_std"):
            mask &= np.isclose(field, value, rtol=1e-6, atol=0.0)
        else:
            mask &= field == value
    if not mask.any():
        raise ValueError(f"no run matches {settings}")
    return result.select(mask)


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
    is higher, and whether the seed ranges overlap. Used to state a result
    from the numbers of the run instead of in advance.

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


def status(result: PaperResult, *, stuck_below: float = 0.25) -> list:
    """'diverged', 'stuck' (final test accuracy < stuck_below) or 'trains', per run.

    Used in notebooks/06_paper_experiment.ipynb.
    """
    final = result.test_acc[:, -1]
    return ["diverged" if d else "stuck" if not (a >= stuck_below) else "trains"
            for d, a in zip(result.diverged, final, strict=True)]


def acceptance(result: PaperResult, unit: int = 0) -> dict:
    """Card A1's acceptance quantities, seed-median over the runs of each network.

    Returns {"bn"/"no_bn": {"acc_1k", "acc_3k", "acc_final", "median_range",
    "p15_0", "p85_0"}, "above_after_first": bool}. acc_3k is NaN if the run
    is shorter. Needs evaluations at 1,000 (and 3,000) steps.

    Used in notebooks/06_paper_experiment.ipynb and tests/test_paper.py.
    """
    out = {}
    for name, flag in (("bn", True), ("no_bn", False)):
        r = result.select(result.bn == flag)
        if not len(r.bn):
            raise ValueError(f"`result` holds no run with bn={flag}")
        p = r.percentiles[:, :, :, unit]
        med = lambda a: float(np.median(a))  # noqa: E731
        out[name] = {
            "acc_1k": med(acc_at(r, 1000)) if 1000 in r.steps else np.nan,
            "acc_3k": med(acc_at(r, 3000)) if 3000 in r.steps else np.nan,
            "acc_final": med(r.test_acc[:, -1]),
            "median_range": med(p[:, :, 1].max(1) - p[:, :, 1].min(1)),
            "p15_0": med(p[:, 0, 0]),
            "p85_0": med(p[:, 0, 2]),
            "curve": np.median(r.test_acc, axis=0),
        }
    out["above_after_first"] = bool(np.all(out["bn"]["curve"][1:] > out["no_bn"]["curve"][1:]))
    return out


# --- reference numbers (cards A1 and A3; read off the published figures) --------

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

# Card A1's NumPy calibration on MNIST-5k (3 seeds, init std 0.01, SGD lr 0.5, batch 60)
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


# --- figures ----------------------------------------------------------------------

_PCT_STYLE = {0: (":", "15th"), 1: ("-", "50th"), 2: ("--", "85th")}


def _groups(result: PaperResult):
    """[(label, colour, runs)] for each (init, BN) combination present, seeds pooled."""
    out = []
    for init, flag in (("gaussian", False), ("gaussian", True), ("xavier", False),
                       ("xavier", True)):
        mask = (result.init == init) & (result.bn == flag)
        if not mask.any():
            continue
        r = result.select(mask)
        name = "with BN" if flag else "without BN"
        if init == "xavier":
            label, color = f"{name}, Xavier init", XAVIER_COLOR if not flag else _plots.PALETTE["sky"]
        else:
            stds = np.unique(r.init_std)
            label = f"{name}, N(0, {stds[0]:g}²)" if len(stds) == 1 else name
            color = _plots.COLORS["bn" if flag else "no_bn"]
        out.append((label, color, r))
    return out


def plot_fig1(result: PaperResult, *, unit: int = 0, seed: int | None = None,
              title: str = "MNIST-5k", acc_ylim=(0.7, 1.0), bn_ylim=(-3, 3)):
    """Fig. 1 (a, b, c): test accuracy with seed bands, then one run's percentiles.

    (a) For each network (and init) in `result`: the median over seeds and a
    band from the lowest to the highest seed; evaluations below the axis are
    marked by triangles on its lower edge. The paper's read-off points are
    drawn where the run is long enough; the x-axis ends at the last step run.
    (b, c) The 15/50/85th percentiles of layer-3 unit `unit` for one seed
    (default: the smallest) of the Gaussian-init networks without and with BN.
    Panel (c) uses `bn_ylim` (the paper's is -2..2); panel (b) widens beyond
    -4..4 if the data need it. Returns (fig, axes).

    Used in notebooks/06_paper_experiment.ipynb.
    """
    fig, axes = _plots.new_figure(1, 3, size=(12, 3.6))
    ax = axes[0]
    last = int(result.steps[-1])
    seeds = np.unique(result.seed)
    below_marked = False
    for label, color, r in _groups(result):
        med, lo, hi = band(r.test_acc)
        ax.fill_between(result.steps, lo, hi, color=color, alpha=0.2, lw=0)
        ax.plot(result.steps, med, color=color, label=f"{label}, median of {len(r.bn)} seeds")
        low = med < acc_ylim[0]
        if low.any():
            ax.plot(result.steps[low], np.full(low.sum(), acc_ylim[0] + 0.006), "v", color=color,
                    ms=4, clip_on=False,
                    label=None if below_marked else f"median below {acc_ylim[0]} (off the axis)")
            below_marked = True
    shown = [s for s in PAPER_FIG1A if s <= last]
    for flag in (False, True):
        if shown:
            color = _plots.COLORS["bn" if flag else "no_bn"]
            ax.plot(shown, [PAPER_FIG1A[s][0 if flag else 1] for s in shown], "x", color=color,
                    ms=6, label=f"{'with' if flag else 'without'} BN, paper (read off)")
    if not shown:
        ax.text(0.02, 0.97, f"(the paper's read-off points start\nat {min(PAPER_FIG1A):,} steps)",
                transform=ax.transAxes, fontsize=8, color="0.3", va="top")
    ax.set_xlim(0, last)
    ax.set_ylim(*acc_ylim)
    _plots.label(ax, f"(a) test accuracy, {title}, {last:,} steps\n(band: min to max over "
                 f"seeds {', '.join(str(int(s)) for s in seeds)})", "training step",
                 "test accuracy")
    ax.legend(loc="lower right", fontsize=7)
    gauss = result.select(result.init == "gaussian")
    seed = int(gauss.seed.min()) if seed is None else int(seed)
    for ax, flag, name in ((axes[1], False, "(b) without BN"), (axes[2], True, "(c) with BN")):
        i = int(np.flatnonzero((gauss.bn == flag) & (gauss.seed == seed))[0])
        p = gauss.percentiles[i, :, :, unit]
        finite = p[np.isfinite(p)]
        lo, hi = (-4.0, 4.0)
        if finite.size:
            lo, hi = min(lo, finite.min() - 0.5), max(hi, finite.max() + 0.5)
        color = _plots.COLORS["bn" if flag else "no_bn"]
        for j, (ls, _) in _PCT_STYLE.items():
            ax.plot(result.steps, p[:, j], ls, color=color)
        ax.set_xlim(0, last)
        ax.set_ylim(*(bn_ylim if flag else (lo, hi)))
        if flag and (finite.min() < bn_ylim[0] or finite.max() > bn_ylim[1]):
            ax.text(0.02, 0.03, "some values lie outside the axis", transform=ax.transAxes,
                    fontsize=8, color="0.3")
        _plots.label(ax, f"{name}, N(0, {gauss.init_std[i]:g}²), seed {seed}:\n"
                     f"layer-3 unit {unit}, training-mode BN" if flag else
                     f"{name}, N(0, {gauss.init_std[i]:g}²), seed {seed}:\nlayer-3 unit {unit}",
                     "training step", "sigmoid input")
    from matplotlib.lines import Line2D

    styles = [Line2D([], [], color="0.35", ls=ls, label=f"{lab} percentile (b, c)")
              for ls, lab in _PCT_STYLE.values()]
    fig.legend(handles=styles, loc="outside lower right", ncol=3, fontsize=9)
    return fig, axes


def init_std_slider(result: PaperResult, *, unit: int = 0):
    """LiveFigure: a log slider over the precomputed init stds of `result` (both networks).

    Left: test accuracy against steps; right: 15/50/85th percentiles of one
    layer-3 sigmoid input. The slider snaps to the nearest computed init std;
    nothing is trained in the callback.

    Used in notebooks/06_paper_experiment.ipynb.
    """
    stds = np.unique(result.init_std)
    if len(stds) < 2:
        raise ValueError("`result` must hold runs at two or more init stds")
    fig, (ax_acc, ax_pct) = _plots.new_figure(1, 2, size=(9.5, 3.3), interactive=True)
    arts = []
    acc_lines, pct_lines = {}, {}
    for flag in (False, True):
        color = _plots.COLORS["bn" if flag else "no_bn"]
        name = "with BN" if flag else "without BN"
        (acc_lines[flag],) = ax_acc.plot(result.steps, np.zeros_like(result.steps, float),
                                         color=color, label=name)
        for j, (ls, lab) in _PCT_STYLE.items():
            (pct_lines[flag, j],) = ax_pct.plot(result.steps, np.zeros_like(result.steps, float),
                                                ls, color=color,
                                                label=f"{name}, {lab}")
    setting = fig.suptitle(" ", fontsize=10)
    arts = list(acc_lines.values()) + list(pct_lines.values()) + [setting]
    ax_acc.axhline(0.1, color="0.5", ls=":", lw=1)
    ax_acc.set_ylim(0, 1)
    _plots.label(ax_acc, "Test accuracy", "training step", "test accuracy", legend=True)
    ax_acc.legend(loc="center right")
    ax_pct.set_ylim(-6, 6)
    seed0 = int(result.seed.min())
    nseeds = len(np.unique(result.seed))
    ax_acc.set_title(f"Test accuracy, median of {nseeds} seeds (chance dotted)")
    _plots.label(ax_pct, f"Layer-3 unit {unit}, seed {seed0}: 15/50/85th percentiles",
                 "training step", "sigmoid input (clipped to ±6)")
    from matplotlib.lines import Line2D

    styles = [Line2D([], [], color="0.4", ls=ls, label=lab) for ls, lab in _PCT_STYLE.values()]
    ax_pct.legend(handles=[acc_lines[False], acc_lines[True]] + styles, loc="upper left", ncol=2,
                  fontsize=8)
    runs = {flag: {s: np.flatnonzero((result.bn == flag) & (result.init_std == s))
                   for s in stds} for flag in (False, True)}
    first = {flag: {s: int(np.flatnonzero((result.bn == flag) & (result.init_std == s)
                                          & (result.seed == seed0))[0])
                    for s in stds} for flag in (False, True)}
    curves = {flag: {s: np.median(result.test_acc[runs[flag][s]], axis=0) for s in stds}
              for flag in (False, True)}

    def update(init_std):
        s = stds[np.argmin(np.abs(np.log(stds) - np.log(init_std)))]
        setting.set_text(f"init std {s:.3g}, learning rate {np.unique(result.lr)[0]:g}, "
                         f"{result.steps[-1]:,} steps")
        text = [f"nearest computed init std: {s:.3g}"]
        for flag in (False, True):
            i = first[flag][s]
            acc_lines[flag].set_ydata(curves[flag][s])
            for j in range(3):
                pct_lines[flag, j].set_ydata(np.clip(result.percentiles[i, :, j, unit], -6, 6))
            name = "with BN" if flag else "without BN"
            text.append(f"{name:>10}: final test accuracy {fmt_band(result.test_acc[runs[flag][s], -1])}"
                        f" (median, min-max over seeds); median drift of unit {unit}, seed {seed0}: "
                        f"{np.ptp(result.percentiles[i, :, 1, unit]):.2f}")
        return "\n".join(text)

    control = _widgets.slider("init std", float(stds[0]), float(stds[-1]),
                              float(stds[len(stds) // 2]), log=True)
    return _widgets.LiveFigure(fig, update, {"init_std": control}, animated=arts)


def lr_slider(result: PaperResult):
    """LiveFigure: a log slider over the learning rates of `result` (both networks).

    Left: final test accuracy against learning rate (static) with a moving
    marker; right: the test-accuracy curves of the selected rate.

    Used in notebooks/06_paper_experiment.ipynb.
    """
    lrs = np.unique(result.lr)
    if len(lrs) < 2:
        raise ValueError("`result` must hold runs at two or more learning rates")
    fig, (ax_lr, ax_curve) = _plots.new_figure(1, 2, size=(9.5, 3.3), interactive=True)
    setting = fig.suptitle(" ", fontsize=10)
    index = {flag: {lr: np.flatnonzero((result.bn == flag) & (result.lr == lr))
                    for lr in lrs} for flag in (False, True)}
    nseeds = len(np.unique(result.seed))
    markers, curves = {}, {}
    median_curves = {flag: {lr: np.median(np.nan_to_num(result.test_acc[index[flag][lr]]), axis=0)
                            for lr in lrs} for flag in (False, True)}
    for flag in (False, True):
        color = _plots.COLORS["bn" if flag else "no_bn"]
        name = "with BN" if flag else "without BN"
        finals = [np.nan_to_num(result.test_acc[index[flag][lr], -1]) for lr in lrs]
        med = np.array([np.median(f) for f in finals])
        ax_lr.fill_between(lrs, [f.min() for f in finals], [f.max() for f in finals], color=color,
                           alpha=0.2, lw=0)
        ax_lr.plot(lrs, med, "o-", color=color, label=f"{name} (median, band min-max)")
        div = np.array([result.diverged[index[flag][lr]].any() for lr in lrs])
        if div.any():
            ax_lr.plot(lrs[div], np.zeros(div.sum()) + 0.02, "X", color=color, ms=9,
                       label=f"{name}: a seed diverged")
        (markers[flag],) = ax_lr.plot([lrs[0]], [0.0], "o", ms=13, mfc="none", mec="k", mew=1.5)
        (curves[flag],) = ax_curve.plot(result.steps, np.zeros(len(result.steps)), color=color,
                                        label=name)
    ax_lr.set_xscale("log")
    ax_lr.set_ylim(0, 1)
    _plots.label(ax_lr, f"Final test accuracy after {result.steps[-1]:,} steps, {nseeds} seeds",
                 "learning rate", "test accuracy", legend=True)
    ax_lr.legend(loc="lower center", fontsize=8)
    ax_curve.set_ylim(0, 1)
    ax_curve.axhline(0.1, color="0.5", ls=":", lw=1)
    _plots.label(ax_curve, f"At the selected rate, median of {nseeds} seeds",
                 "training step", "test accuracy", legend=True)
    ax_curve.legend(loc="lower right")

    def update(lr):
        chosen = lrs[np.argmin(np.abs(np.log(lrs) - np.log(lr)))]
        setting.set_text(f"selected learning rate {chosen:.3g} (circles, right panel); "
                         f"init std {np.unique(result.init_std)[0]:g}")
        text = [f"nearest computed learning rate: {chosen:.3g}"]
        for flag in (False, True):
            i = index[flag][chosen]
            acc = median_curves[flag][chosen]
            markers[flag].set_data([chosen], [acc[-1]])
            curves[flag].set_ydata(acc)
            name = "with BN" if flag else "without BN"
            states = status(result.select(np.isin(np.arange(len(result.bn)), i)))
            summary = ", ".join(f"{states.count(k)} {k}" for k in ("trains", "stuck", "diverged")
                                if states.count(k))
            text.append(f"{name:>10}: final test accuracy "
                        f"{fmt_band(np.nan_to_num(result.test_acc[i, -1]))} (seeds: {summary})")
        return "\n".join(text)

    control = _widgets.slider("learning rate", float(lrs[0]), float(lrs[-1]),
                              float(lrs[len(lrs) // 2]), log=True)
    return _widgets.LiveFigure(fig, update, {"lr": control},
                               animated=list(markers.values()) + list(curves.values()) + [setting])
