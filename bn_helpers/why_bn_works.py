"""Measurements behind the explanations of why BN helps: probes and per-step records for the engine.

Every network is a `bnh.MLP` trained by `bnh.fit_many` (or `bnh.train.sgd` for
the deep linear network); this module only holds what the experiments
measure along the way:

* `drift_probe`: mean and std of every unit of a hidden layer's output (the next
  layer's input) on fixed images, at every evaluation (distribution drift);
* `step_record(model, lr, multipliers)`: at every step, Santurkar et al.'s
  gradient-based internal covariate shift (the gradient of a layer before and
  after the earlier layers take their step) and the loss and gradient along the
  gradient direction at several step lengths (loss landscape, gradient
  predictiveness, effective beta-smoothness);
* `same_sign_share`: LeCun's condition, the share of input vectors with one sign;
* `weight_norm_probe`: the norm of every weight matrix (effective learning rate);
* small summaries (`band`, `fmt_band`, `markdown_table`) for seed-median (min-max) reports.

The deep linear network, the one-step test, repeated batches and the CNN's images live in
`bn_helpers.why_bn_works_extra` and are re-exported here.

Used in notebooks/07_why_bn_works.ipynb.
"""

from __future__ import annotations

from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np

from . import train as _train
from .compat import optimization_barrier as _optimization_barrier
from .why_bn_works_extra import (  # re-exported: the notebook calls why.<name>
    cosine,
    deep_linear_data,
    deep_linear_ics,
    depth_growth,
    final_loss,
    gap,
    ics_pair,
    one_step,
    repeated_batches,
    run_rows,
    small_images,
    threshold_rate,
)

__all__ = ["band", "fmt_band", "markdown_table", "drift_probe", "drift", "step_record",
           "cosine", "effective_lr", "landscape_summary", "deep_linear_ics", "weight_norm_probe",
           "scaled_loss", "max_trained_lr", "select", "ics_pair", "drift_probe_for",
           "deep_linear_data", "same_sign_share", "one_step", "repeated_batches", "small_images",
           "threshold_rate", "depth_growth", "gap", "final_loss", "run_rows"]

# --- reporting over seeds ------------------------------------------------------------------


def band(values, axis=0):
    """(median, min, max) over `axis` (the seeds), NaN-aware.

    Used in notebooks/07_why_bn_works.ipynb.
    """
    v = np.asarray(values, dtype=np.float64)
    return np.nanmedian(v, axis), np.nanmin(v, axis), np.nanmax(v, axis)


def fmt_band(values, digits: int = 3) -> str:
    """'median (min-max)' of a 1-D array of per-seed values.

    Used in notebooks/07_why_bn_works.ipynb.
    """
    med, lo, hi = band(np.ravel(values))
    return f"{med:.{digits}g} ({lo:.{digits}g}-{hi:.{digits}g})"


def markdown_table(rows: list[dict]) -> str:
    """A Markdown table from a list of dicts with the same keys.

    Used in notebooks/07_why_bn_works.ipynb.
    """
    keys = list(rows[0])
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    out += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(out)


def select(result, index):
    """The runs `index` (an int, slice or index array) of a `fit_many` result, every field sliced.

    Used in notebooks/07_why_bn_works.ipynb.
    """
    return result._replace(**{f: jax.tree.map(lambda a: np.asarray(a)[index], getattr(result, f))
                              for f in result._fields if f != "eval_steps"
                              and getattr(result, f) is not None})


# --- distribution drift (probe at every evaluation) ----------------------------------------


def drift_probe(params, state, x, *, model=None):
    """Mean and std of every unit of hidden layer 0's output on the fixed images `x`, and the
    norm of every hidden layer's weight matrix.

    That output is the input of the next layer. BN in training mode (the
    statistics of these images), no injected noise. Returns {"mean", "std"}
    of shape (units,), "weight_norm" (hidden layers,) and "same_sign": the
    share of the images whose input vector to hidden layer 2 has one sign
    (all >= 0 or all <= 0; a zero input moves no weight), LeCun's condition
    for every incoming weight of a unit to move the same way. Bind `model`
    with `drift_probe_for`.
    """
    _, _, hidden = model.apply(params, state, x, train=True, return_hidden=True, key=None)
    a = hidden[0]["post"]
    return {"mean": jnp.mean(a, 0), "std": jnp.std(a, 0), "weight_norm": weight_norm_probe(params, state),
            "same_sign": same_sign_share(a)}


def same_sign_share(a):
    """Share of the rows of `a` (examples x inputs) whose entries all have one sign (zeros count
    as either sign).

    Used in notebooks/07_why_bn_works.ipynb.
    """
    # the barrier keeps XLA from folding relu(z) >= 0 to a constant (and then folding the
    # reduction over that constant, which takes seconds at compile time)
    a = _optimization_barrier(a)
    return jnp.mean((jnp.min(a, -1) >= 0) | (jnp.max(a, -1) <= 0))


@lru_cache(maxsize=None)
def drift_probe_for(model):
    """`drift_probe` bound to `model`: the same function object every call (one compile).

    Used in notebooks/07_why_bn_works.ipynb.
    """
    return partial(drift_probe, model=model)


def drift(probe) -> np.ndarray:
    """How far each unit's mean moved from its start, in units of its starting std.

    probe: the `drift_probe` record of `fit_many`, arrays (seeds, evaluations, units).
    Returns (seeds, evaluations): the median over units of |mean_t - mean_0| / std_0.

    Used in notebooks/07_why_bn_works.ipynb.
    """
    mean, std = np.asarray(probe["mean"]), np.asarray(probe["std"])
    moved = np.abs(mean - mean[:, :1]) / np.maximum(std[:, :1], 1e-6)
    return np.median(moved, axis=-1)


# --- per-step record: gradient ICS and the landscape along the gradient --------------------


def effective_lr(lr, w):
    """lr / ||w||^2 (squared Frobenius norm): the step size a scale-invariant layer really takes.

    Used in notebooks/07_why_bn_works.ipynb.
    """
    return lr / jnp.sum(jnp.square(jnp.asarray(w)))


def _batch_loss(model, params, state, xb, yb):
    logits, _ = model.apply(params, state, xb, train=True, key=None)
    return _train.cross_entropy(logits, yb)


def _tree_norm(tree):
    return jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(tree)))


def _record(params, state, grads, xb, yb, *, model, lr, multipliers, layers):
    """Gradient ICS of `layers` and the landscape at `multipliers` x lr, on this step's batch."""
    loss = partial(_batch_loss, model)
    grad = jax.grad(loss)
    out = {"grad_norm": _tree_norm(grads)}
    cos, l2 = [], []
    for i in layers:
        # Santurkar et al.'s G': the layers before i have taken this step, i and later have not
        moved = [jax.tree.map(lambda p, g: p - lr * g, params[j], grads[j]) if j < i else params[j]
                 for j in range(len(params))]
        g_after = grad(moved, state, xb, yb)[i]["W"]
        cos.append(cosine(grads[i]["W"], g_after))
        l2.append(jnp.linalg.norm(grads[i]["W"] - g_after))
    out["ics_cos"], out["ics_l2"] = jnp.stack(cos), jnp.stack(l2)
    if not multipliers:
        return out

    def along(m):
        # one program for every step length (vmapped), not one per length
        stepped = jax.tree.map(lambda p, g: p - m * lr * g, params, grads)
        value, g_m = jax.value_and_grad(loss)(stepped, state, xb, yb)
        return value, _tree_norm(jax.tree.map(jnp.subtract, grads, g_m))

    out["loss"], out["grad_diff"] = jax.vmap(along)(jnp.asarray(multipliers, jnp.float32))
    return out


@lru_cache(maxsize=None)
def step_record(model, lr: float, multipliers: tuple, layers: tuple = (1, 2)):
    """A `record` hook for `fit`: per step, ICS of `layers` and the loss along the gradient.

    Works for `bnh.MLP` and for a `bnh.CNN` whose layers are not stacked (each
    entry of params has its own "W"); `multipliers=()` records the ICS only.

    Returns {"ics_cos", "ics_l2"} (len(layers),): cosine and l2 distance between
    the layer's weight gradient G and G' (the same gradient after the earlier
    layers took their plain SGD step of rate `lr`); {"loss", "grad_diff"}
    (len(multipliers),): the loss at w - m * lr * g and ||g - grad(w - m * lr * g)||
    on the same batch; "grad_norm": ||g||. The same function object for the same
    arguments (one compile).

    Used in notebooks/07_why_bn_works.ipynb.
    """
    return partial(_record, model=model, lr=float(lr), multipliers=tuple(float(m) for m in multipliers),
                   layers=tuple(layers))


def landscape_summary(record, multipliers, lr, loss_now, upto: int | None = None) -> dict:
    """Per seed: median over steps of the loss range, 95th percentile of the gradient change,
    95th percentile of the effective beta-smoothness, over the first `upto` multipliers.

    record: `step_record`'s arrays with leading (seeds, steps); loss_now: result.loss
    (seeds, steps), the loss at the current weights (multiplier 0), included in the range.

    Used in notebooks/07_why_bn_works.ipynb.
    """
    sl = slice(None, upto)
    losses = np.concatenate([np.asarray(loss_now)[..., None], np.asarray(record["loss"])[..., sl]], -1)
    diffs = np.asarray(record["grad_diff"])[..., sl]
    dist = np.asarray(multipliers)[sl] * lr * np.asarray(record["grad_norm"])[..., None]
    beta = np.max(diffs / np.maximum(dist, 1e-12), axis=-1)
    rng = np.ptp(losses, axis=-1)
    return {"loss_range": np.nanmedian(rng, 1), "grad_diff_p95": np.nanpercentile(diffs.max(-1), 95, 1),
            "beta_p95": np.nanpercentile(beta, 95, 1)}


# --- scale invariance and weight norms -----------------------------------------------------


def weight_norm_probe(params, state):
    """Frobenius norm of every hidden layer's weight matrix, shape (layers - 1,).

    Used in notebooks/07_why_bn_works.ipynb.
    """
    return jnp.stack([jnp.linalg.norm(p["W"]) for p in params[:-1]])


def scaled_loss(model, params, state, x, y, layer: int, factors):
    """Training-mode loss on (x, y) with layer `layer`'s weights multiplied by each factor.

    Used in notebooks/07_why_bn_works.ipynb.
    """
    out = []
    for c in factors:
        p = [dict(q, W=q["W"] * c) if j == layer else q for j, q in enumerate(params)]
        out.append(float(_batch_loss(model, p, state, x, y)))
    return np.array(out)


def max_trained_lr(lrs, acc, threshold: float = 0.5):
    """Largest rate at which every seed reaches `threshold` (acc: (rates, seeds)); NaN if none.

    Used in notebooks/07_why_bn_works.ipynb.
    """
    ok = np.all(np.nan_to_num(np.asarray(acc), nan=0.0) >= threshold, axis=1)
    return float(np.max(np.asarray(lrs)[ok])) if ok.any() else float("nan")
