"""Training-side pieces of notebook 09: frozen BN for fine-tuning, record and probe hooks, BN probes.

* `FrozenNorm`: a model wrapper that freezes BN (running statistics used in
  training, gamma/beta not updated: Keras `trainable=False`, PyTorch eval mode);
* `layer_grad_norms` (record) and `running_stats` (probe) for `bnh.fit`;
* `bn_probes`: accuracy of a trained BN network when parts of its BN are swapped out.

Re-exported by `bn_helpers.deep_residual`. Used in notebooks/09_deep_residual.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import train as _train
from .cnn import CNN

__all__ = ["FrozenNorm", "running_stats", "layer_grad_norms", "final_acc", "bn_probes"]


# --- BN frozen: Keras trainable=False, PyTorch eval-mode BN --------------------------------


def _freeze_affine(params):
    def leaf(path, a):
        names = [k.key for k in path if isinstance(k, jax.tree_util.DictKey)]
        return jax.lax.stop_gradient(a) if names and names[-1] in ("gamma", "beta") else a

    return jax.tree_util.tree_map_with_path(leaf, params)


@dataclass(frozen=True)
class FrozenNorm:
    """`model` with its normalization frozen, for `bnh.fit` (same model protocol).

    stats=True: the norm layers use their running statistics in training too
    (eval-mode BN; the running statistics are not updated). affine=True: gamma
    and beta get no gradient, so SGD leaves them where they are. Both together
    are Keras' `layer.trainable = False` on a BatchNormalization layer, and
    PyTorch's `bn.eval()` with `requires_grad_(False)` on its weight and bias.

    Used in notebooks/09_deep_residual.ipynb.
    """

    model: object
    stats: bool = True
    affine: bool = True

    @property
    def input_shape(self):
        return self.model.input_shape

    @property
    def needs_batch(self) -> bool:
        return self.model.needs_batch and not self.stats

    def init_params(self, key, scale=1.0):
        return self.model.init_params(key, scale)

    def apply(self, params, state, x, *, train: bool, key=None, return_hidden: bool = False):
        if self.affine:
            params = _freeze_affine(params)
        return self.model.apply(params, state, x, train=train and not self.stats, key=key,
                                return_hidden=return_hidden)


def running_stats(params, state):
    """Probe for `fit`: the whole state (every BN layer's running mean and variance per channel).

    Used in notebooks/09_deep_residual.ipynb.
    """
    return state


def final_acc(result, field: str = "test_acc") -> np.ndarray:
    """Last evaluation of `field` per run, NaN counted as chance (0.1).

    Used in notebooks/09_deep_residual.ipynb.
    """
    return np.nan_to_num(np.asarray(getattr(result, field))[:, -1], nan=0.1)


def layer_grad_norms(params, state, grads, xb, yb):
    """Record for `fit`: the gradient norm of every 3x3 conv weight at this step, in layer order.

    Works for plain and residual `bnh.CNN`s without knowing the net: a stacked
    run of layers has 5-D weights (layer axis first); the dense head and 1x1
    projections are left out. Same order as `conv_weights`.

    Used in notebooks/09_deep_residual.ipynb.
    """
    out = []
    for g in grads:
        ws = [g["W"]] if "W" in g else [g["conv1"]["W"], g["conv2"]["W"]]
        ws = [w for w in ws if w.ndim >= 4 and w.shape[-4] == 3]
        if not ws:
            continue
        if ws[0].ndim == 5:
            norms = jnp.stack([jnp.sqrt(jnp.sum(w ** 2, axis=(1, 2, 3, 4))) for w in ws], axis=1)
            out.append(norms.reshape(-1))
        else:
            out.append(jnp.stack([jnp.linalg.norm(w) for w in ws]))
    return jnp.concatenate(out)


def _reset_affine(params):
    def leaf(path, a):
        names = [k.key for k in path if isinstance(k, jax.tree_util.DictKey)]
        if names and names[-1] == "gamma":
            return jnp.ones_like(a)
        if names and names[-1] == "beta":
            return jnp.zeros_like(a)
        return a

    return jax.tree_util.tree_map_with_path(leaf, params)


def _reset_stats(state):
    def leaf(path, a):
        names = [k.key for k in path if isinstance(k, jax.tree_util.DictKey)]
        return jnp.ones_like(a) if names and names[-1] == "var" else jnp.zeros_like(a)

    return jax.tree_util.tree_map_with_path(leaf, state)


@partial(jax.jit, static_argnames=("net", "batch"))
def _batch_stat_acc(net, params, state, x, y, batch):
    """Accuracy with BN using each test batch's own statistics (training-mode forward)."""
    n = x.shape[0] // batch * batch
    xs, ys = x[:n].reshape((-1, batch) + x.shape[1:]), y[:n].reshape(-1, batch)

    def one(c, xy):
        logits, _ = net.apply(params, state, xy[0], train=True)
        return c + jnp.sum(jnp.argmax(logits, -1) == xy[1]), None

    return jax.lax.scan(one, 0, (xs, ys))[0] / n


def bn_probes(net: CNN, result, x, y, *, batch: int = 100) -> dict:
    """Test accuracy per run of a trained BN network, with parts of its BN swapped out.

    "as trained": running statistics (eval mode); "batch statistics": each test
    batch of `batch` images normalized by its own statistics; "gamma=1, beta=0":
    the learned affine parameters replaced by their initial values; "statistics
    reset": running mean 0 and variance 1 (the values at init), i.e. no
    normalization at all.

    Used in notebooks/09_deep_residual.ipynb.
    """
    x, y = jnp.asarray(x), jnp.asarray(y, jnp.int32)
    p, s = result.params, result.state
    return {"as trained": _evaluate_runs(net, p, s, x, y),
            "batch statistics": np.asarray(jax.lax.map(
                lambda ps: _batch_stat_acc(net, ps[0], ps[1], x, y, batch), (p, s))),
            "gamma=1, beta=0": _evaluate_runs(net, _reset_affine(p), s, x, y),
            "statistics reset": _evaluate_runs(net, p, _reset_stats(s), x, y)}


@partial(jax.jit, static_argnames=("net",))
def _evaluate_all(net, params, state, x, y):
    # One run after the other (batching convolutions over different weights is slow on CPU)
    return jax.lax.map(lambda ps: _train.evaluate(net, ps[0], ps[1], x, y), (params, state))


def _evaluate_runs(net, params, state, x, y):
    return np.asarray(_evaluate_all(net, params, state, x, y))
