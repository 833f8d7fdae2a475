"""Compute for notebook 08: inputs for the batch-size sweep, few-class batches, sequences for the
RNN, Batch Renormalization's r and d, which axes each norm averages over, and folding for inference.

Every normalization goes through `bn_helpers.norms` and every training run
through `bnh.fit` / `bnh.fit_many` in the notebook; this module prepares
inputs and reads results. The published numbers quoted beside ours are in
`WU_HE_FIG1` and `WU_HE_TABLE1`.

Used in notebooks/08_beyond_bn.ipynb.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import inference as _inference
from . import norms as _norms

__all__ = ["WU_HE_FIG1", "WU_HE_TABLE1", "WU_HE_RENORM", "LABELS", "fmt_band", "markdown_table",
           "downsample", "as_rows", "pad_rows", "few_class_batches", "renorm_correction",
           "shared_statistics", "group_walk", "fold_table", "eval_with_batch_stats", "accuracy_many",
           "seed", "take"]

# Wu & He (2018), ResNet-50 on ImageNet, validation error (%) against images per GPU (Fig. 1 / Table 2)
WU_HE_FIG1 = {"sizes": (32, 16, 8, 4, 2), "batch": (23.6, 23.7, 24.8, 27.3, 34.7),
              "group": (24.1, 24.2, 24.0, 24.2, 24.1)}
# Table 1 of the same paper, 32 images per GPU
WU_HE_TABLE1 = {"batch": 23.6, "layer": 25.3, "instance": 28.4, "group": 24.1}
# Batch Renorm at 4 images per GPU (r_max 1.5, d_max 0.5), beside BN and GN at 4
WU_HE_RENORM = {"renorm": 26.3, "batch": 27.3, "group": 24.2}

LABELS = {None: "no norm", "batch": "BN", "layer": "LayerNorm", "instance": "InstanceNorm",
          "group": "GroupNorm", "renorm": "Batch Renorm"}


def fmt_band(values, digits: int = 3) -> str:
    """'median (min-max)' of a few values (seeds), e.g. '0.912 (0.905-0.918)'.

    Used in notebooks/08_beyond_bn.ipynb.
    """
    v = np.asarray(values, dtype=float).ravel()
    return f"{np.median(v):.{digits}f} ({v.min():.{digits}f}-{v.max():.{digits}f})"


def markdown_table(rows: list) -> str:
    """A Markdown table from a list of dicts with the same keys.

    Used in notebooks/08_beyond_bn.ipynb.
    """
    keys = list(rows[0])
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    out += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(out)


# --- inputs --------------------------------------------------------------------------------------


def downsample(x, factor: int = 2):
    """Average-pool NHWC images by `factor` in height and width (28x28 -> 14x14 for factor 2).

    Used in notebooks/08_beyond_bn.ipynb.
    """
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[1] % factor or x.shape[2] % factor:
        raise ValueError(f"`x` must be NHWC with height and width divisible by {factor}, "
                         f"got {x.shape}")
    n, h, w, c = x.shape
    return x.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


def as_rows(x, mean: float, std: float):
    """Images (N, H, W, 1) as standardized sequences (N, H, W): one image row per time step.

    Standardizing (with the training set's pixel `mean` and `std`) makes a blank
    row a constant nonzero input, so no step starts from an all-zero vector
    (whose layer-norm variance would be 0).

    Used in notebooks/08_beyond_bn.ipynb.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4 or x.shape[-1] != 1:
        raise ValueError(f"`x` must be (N, H, W, 1) grey images, got {x.shape}")
    return (x[..., 0] - mean) / std


def pad_rows(seq, extra: int, blank: float, *, where: str = "before"):
    """Sequences (N, T, D) with `extra` blank rows (value `blank`) added before or after the image.

    Used in notebooks/08_beyond_bn.ipynb.
    """
    if where not in ("before", "after"):
        raise ValueError(f"`where` must be 'before' or 'after', got {where!r}")
    seq = np.asarray(seq, dtype=np.float32)
    pad = np.full((seq.shape[0], int(extra), seq.shape[2]), blank, np.float32)
    return np.concatenate([pad, seq] if where == "before" else [seq, pad], axis=1)


def few_class_batches(labels, num_steps: int, batch_size: int, classes_per_batch: int, seed: int = 0):
    """Batch indices (num_steps, batch_size) in which each batch holds only a few classes.

    Every batch draws `classes_per_batch` distinct classes at random and
    batch_size / classes_per_batch examples of each (without replacement within
    a batch), like Ioffe's (2017) non-i.i.d. batches (16 labels x 2 images).
    Pass the result as `batch_idx=` to `bnh.fit` / `bnh.fit_many`.

    Used in notebooks/08_beyond_bn.ipynb.
    """
    labels = np.asarray(labels)
    classes = np.unique(labels)
    if batch_size % classes_per_batch or not 1 <= classes_per_batch <= len(classes):
        raise ValueError(f"`classes_per_batch`={classes_per_batch} must divide `batch_size`="
                         f"{batch_size} and lie in [1, {len(classes)}]")
    per = batch_size // classes_per_batch
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(labels == c) for c in classes]
    out = np.empty((num_steps, batch_size), np.int32)
    for s in range(num_steps):
        picked = rng.choice(len(classes), classes_per_batch, replace=False)
        out[s] = np.concatenate([rng.choice(members[c], per, replace=False) for c in picked])
    return out


# --- Batch Renormalization's correction ------------------------------------------------------------


def renorm_correction(batch_mean, batch_var, running_mean, running_var, r_max, d_max, eps=1e-5):
    """Batch Renorm's (r, d) per channel (Ioffe 2017, Algorithm 1), with sigma = sqrt(var + eps).

    r = clip(sigma_B / sigma, 1/r_max, r_max), d = clip((mu_B - mu) / sigma, -d_max, d_max):
    then r * (x - mu_B) / sigma_B + d = (x - mu) / sigma when nothing is clipped.

    Used in notebooks/08_beyond_bn.ipynb (reference answer of exercise 2).
    """
    sigma_b = jnp.sqrt(jnp.asarray(batch_var) + eps)
    sigma = jnp.sqrt(jnp.asarray(running_var) + eps)
    r = jnp.clip(sigma_b / sigma, 1.0 / r_max, r_max)
    d = jnp.clip((jnp.asarray(batch_mean) - running_mean) / sigma, -d_max, d_max)
    return r, d


@jax.jit
def _renorm_vs_eval(z, gamma, beta, mean, var, r_max, d_max):
    params, state = {"gamma": gamma, "beta": beta}, {"mean": mean, "var": var}
    train, _ = _norms.apply_norm("renorm", params, state, z, train=True, r_max=r_max, d_max=d_max)
    bn, _ = _norms.apply_norm("batch", params, state, z, train=True)
    ev, _ = _norms.apply_norm("batch", params, state, z, train=False)
    return train, bn, ev


def renorm_outputs(z, gamma, beta, mean, var, r_max, d_max):
    """(Batch Renorm's training output, BN's training output, the eval output) for a batch z (N, C).

    Used in notebooks/08_beyond_bn.ipynb (the r_max, d_max explorer).
    """
    return _renorm_vs_eval(jnp.asarray(z, jnp.float32), gamma, beta, mean, var,
                           jnp.float32(r_max), jnp.float32(d_max))


# --- which values share one mean and variance --------------------------------------------------------


def shared_statistics(kind: str, num_examples: int, channels: int, groups: int | None = None):
    """Integer labels (N, C): entries with the same label share one mean and variance.

    Positions (H, W) always share their example's and channel's label, except
    that batch norm also pools the examples. kind: one of `norms.KINDS`
    ("renorm" as "batch").

    Used in notebooks/08_beyond_bn.ipynb.
    """
    n, c = np.arange(num_examples)[:, None], np.arange(channels)[None, :]
    if kind in ("batch", "renorm"):
        return np.broadcast_to(c, (num_examples, channels)).copy()
    g = {"layer": 1, "instance": channels}.get(kind, groups)
    if g is None or channels % g:
        raise ValueError(f"`groups` must divide the {channels} channels, got {groups!r}")
    return n * g + c // (channels // g)


def group_walk(x, groups_list):
    """Group norm of one NHWC block for every G in groups_list: {G: y}, gamma = 1, beta = 0.

    Used in notebooks/08_beyond_bn.ipynb (the groups explorer).
    """
    x = jnp.asarray(x, jnp.float32)
    c = x.shape[-1]
    ones, zeros = jnp.ones(c), jnp.zeros(c)
    return {g: np.asarray(_norms.group_norm(x, ones, zeros, groups=g)) for g in groups_list}


def take(result, runs):
    """The runs `runs` (a slice or index array) of a `fit_many` result, as a result of the same kind.

    Used in notebooks/08_beyond_bn.ipynb.
    """
    fields = {k: (v if k == "eval_steps" or v is None else jax.tree.map(lambda a: a[runs], v))
              for k, v in result._asdict().items()}
    return type(result)(**fields)


def seed(tree, i: int):
    """Entry i of every leaf: one run out of a `fit_many` result's params or state.

    Used in notebooks/08_beyond_bn.ipynb.
    """
    return jax.tree.map(lambda a: a[i], tree)


def accuracy_many(model, params, state, x, y):
    """Eval-mode test accuracy of every run of a `fit_many` result (leading axis K), shape (K,).

    x may have another sequence length than the model was trained on (an RNN).

    Used in notebooks/08_beyond_bn.ipynb.
    """
    logits = _logits_many(model, params, state, jnp.asarray(x, jnp.float32))
    return np.asarray(jnp.mean(jnp.argmax(logits, -1) == jnp.asarray(y)[None], axis=1))


@partial(jax.jit, static_argnums=0)
def _logits_many(model, params, state, x):
    return jax.vmap(lambda p, s: model.apply(p, s, x, train=False)[0])(params, state)


# --- inference: running statistics and folding --------------------------------------------------------


def eval_with_batch_stats(model, params, state, x, y, batch_size: int, seed: int = 0):
    """Accuracy when every test batch (shuffled, of `batch_size`) is normalized with its own statistics.

    Runs the model in training mode on the test batches (the running
    statistics it would update are discarded).

    Used in notebooks/08_beyond_bn.ipynb.
    """
    perm = np.random.default_rng(seed).permutation(len(x))
    n = len(x) // batch_size * batch_size
    xb = jnp.asarray(x[perm[:n]]).reshape((-1, batch_size) + x.shape[1:])
    yb = jnp.asarray(y[perm[:n]]).reshape(-1, batch_size)
    return float(_batch_stat_acc(model, params, state, xb, yb))


@partial(jax.jit, static_argnums=0)
def _batch_stat_acc(model, params, state, xb, yb):
    def one(xy):
        logits, _ = model.apply(params, state, xy[0], train=True)
        return jnp.mean(jnp.argmax(logits, -1) == xy[1])

    return jnp.mean(jax.lax.map(one, (xb, yb)))


def _affine_fit_error(z, y):
    """Relative residual of the best per-channel affine map z -> y (least squares), over a batch."""
    z2 = np.asarray(z, np.float64).reshape(-1, z.shape[-1])
    y2 = np.asarray(y, np.float64).reshape(-1, y.shape[-1])
    zc, yc = z2 - z2.mean(0), y2 - y2.mean(0)
    slope = (zc * yc).sum(0) / np.maximum((zc * zc).sum(0), 1e-30)
    resid = yc - slope * zc
    return float(np.sqrt((resid ** 2).sum() / (yc ** 2).sum()))


def fold_table(x, w, key, *, groups: int, eps: float = 1e-5):
    """For every norm kind after one 3x3 convolution: does inference need running statistics, do the
    training and eval outputs differ, and can the norm be folded into the convolution?

    x: an NHWC batch; w: conv weights (3, 3, C_in, C). Running statistics are
    made up (random), as after training. For BN and Batch Renorm the fold is
    `bnh.inference.fold_dense_bn` applied to the conv weights; for the others
    the number is the error of the *best* per-channel affine map from the
    conv output to the norm's output, over the batch (0 would mean foldable).
    Returns a list of dicts (rows).

    Used in notebooks/08_beyond_bn.ipynb.
    """
    x, w = jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32)
    c = w.shape[-1]
    conv = lambda v, ww: jax.lax.conv_general_dilated(  # noqa: E731
        v, ww, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    z = conv(x, w)
    k = jax.random.split(key, 4)
    params = {"gamma": 1.0 + 0.3 * jax.random.normal(k[0], (c,)), "beta": 0.2 * jax.random.normal(k[1], (c,))}
    mean_z, var_z = jnp.mean(z, (0, 1, 2)), jnp.var(z, (0, 1, 2))
    running = {"mean": mean_z + 0.1 * jnp.sqrt(var_z) * jax.random.normal(k[2], (c,)),
               "var": var_z * jnp.exp(0.2 * jax.random.normal(k[3], (c,)))}
    rows = []
    for kind in _norms.KINDS:
        _, state0 = _norms.init_norm(kind, c)
        state = running if state0 else {}
        g = groups if kind == "group" else None
        y_train, _ = _norms.apply_norm(kind, params, state, z, train=True, groups=g)
        y_eval, _ = _norms.apply_norm(kind, params, state, z, train=False, groups=g)
        diff = float(jnp.max(jnp.abs(y_train - y_eval)))
        if state:
            w2, b2 = _inference.fold_dense_bn(w.reshape(-1, c), jnp.zeros(c), params["gamma"],
                                              params["beta"], state["mean"], state["var"])
            folded = conv(x, w2.reshape(w.shape)) + b2
            err = float(jnp.max(jnp.abs(folded - y_eval)) / jnp.max(jnp.abs(y_eval)))
        else:
            err = _affine_fit_error(z, y_eval)
        rows.append({"kind": kind, "running": bool(state0), "train_eval_diff": diff, "fold_error": err})
    return rows
