"""A one-layer recurrent network (tanh cell) with optional batch or layer norm, as plain pytrees.

`RNN` has the model protocol of `bn_helpers.MLP` and `bn_helpers.CNN`
(`input_shape`, `needs_batch`, `init_params(key, scale)`, a pure `apply`),
so `bnh.fit` and `bnh.fit_many` train it. An example is a sequence of shape
(T, D), for instance an image read row by row; the cell is

    a_t = h_{t-1} W_h + x_t W_x (+ b),   h_t = tanh(norm(a_t)),

and the class is read from h_T by a dense layer. The norm of the summed
input a_t is the placement of Ba, Kiros & Hinton (2016, section 3.1), and
every norm goes through `bn_helpers.norms` (no formula of its own here):

- norm=None: no normalization (the bias b is then kept);
- "layer": each example's statistics over its H units, the same at every
  step and in training and eval mode;
- "batch": batch norm with its own statistics for every time step
  (Cooijmans et al. 2016): the state holds running means and variances of
  shape (T, H); gamma and beta are shared by all steps. A sequence longer
  than T in eval mode uses step T's statistics for every later step, as
  Cooijmans et al. do; there are none measured for those steps.

Used in notebooks/08_beyond_bn.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from . import compat as _compat
from . import norms as _norms
from .mlp import init_std

__all__ = ["RNN", "NORMS"]

NORMS = (None, "batch", "layer")


@dataclass(frozen=True)
class RNN:
    """Sequences (T, D) -> class logits through one tanh recurrent layer of `hidden` units.

    input_shape: (T, D), the training length T and the size D of one input step.
    norm: None, "batch" (per-time-step statistics) or "layer" (see the module doc).
    init: scheme of the input weights W_x (`bn_helpers.mlp.init_std`);
    the recurrent weights W_h start as `recurrent_gain` times a random
    orthogonal matrix. momentum, eps, unbiased_var: as in `bn_helpers.norms`.
    unroll: time steps per iteration of the `lax.scan` over time (XLA's CPU
    backend runs short steps faster unrolled; the numbers do not change).
    """

    input_shape: tuple = (28, 28)
    hidden: int = 64
    num_classes: int = 10
    norm: str | None = None
    init: str = "xavier"
    init_std: float = 0.01
    recurrent_gain: float = 1.0
    momentum: float = 0.9
    eps: float = 1e-5
    unbiased_var: bool = True
    unroll: int = 1

    def __post_init__(self):
        shape = tuple(self.input_shape)
        if len(shape) != 2 or any(not isinstance(v, int) or isinstance(v, bool) or v < 1
                                  for v in shape):
            raise ValueError(f"`input_shape` must be (steps, features) of positive ints, "
                             f"got {self.input_shape!r}")
        object.__setattr__(self, "input_shape", shape)
        for name in ("hidden", "num_classes"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"`{name}` must be a positive int, got {v!r}")
        if self.norm not in NORMS:
            raise ValueError(f"`norm` must be one of {NORMS}, got {self.norm!r}")
        init_std(self.init, 1, 1)  # validates the scheme name
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"`momentum` must be in [0, 1], got {self.momentum}")
        if not self.eps > 0.0:
            raise ValueError(f"`eps` must be > 0, got {self.eps}")

    @property
    def needs_batch(self) -> bool:
        """True when training mode uses batch statistics (so a batch needs >= 2 examples)."""
        return self.norm in _norms.STATEFUL

    def init_params(self, key, scale=1.0):
        """(params, state): [cell, output layer] each.

        cell params: {"input": {"W": (D, H)}, "recurrent": {"W": (H, H)}} plus
        "b" (no norm) or "gamma", "beta" (H,); cell state: {"mean", "var"} of
        shape (T, H) for norm="batch", else {}. `scale` multiplies every
        weight and may be traced.
        """
        t, d = self.input_shape
        h = self.hidden
        k_in, k_rec, k_out = jax.random.split(key, 3)
        w_in = init_std(self.init, d, h, self.init_std) * scale * _compat.normal(k_in, (d, h))
        q, r = jnp.linalg.qr(_compat.normal(k_rec, (h, h)))
        w_rec = self.recurrent_gain * scale * q * jnp.sign(jnp.diag(r))[None, :]
        cell = {"input": {"W": w_in}, "recurrent": {"W": w_rec}}
        cell_state = {}
        if self.norm is None:
            cell["b"] = jnp.zeros(h)
        else:
            norm_p, _ = _norms.init_norm(self.norm, h)
            cell.update(norm_p)
            if self.norm == "batch":
                cell_state = {"mean": jnp.zeros((t, h)), "var": jnp.ones((t, h))}
        std = init_std(self.init, h, self.num_classes, self.init_std) * scale
        out = {"W": std * _compat.normal(k_out, (h, self.num_classes)),
               "b": jnp.zeros(self.num_classes)}
        return [cell, out], [cell_state, {}]

    def _norm(self, p, s, a, train):
        if self.norm is None:
            return a + p["b"], s
        norm_p = {"gamma": p["gamma"], "beta": p["beta"]}
        return _norms._apply_norm(self.norm, norm_p, s, a, train=train, momentum=self.momentum,
                                  eps=self.eps, unbiased_var=self.unbiased_var)

    def apply(self, params, state, x, *, train: bool, key=None, return_hidden: bool = False):
        """Forward pass: (logits, new_state), or with return_hidden (logits, new_state, hidden).

        x: (N, T', D). In eval mode T' may be any length (batch norm uses step
        T's statistics beyond step T); in training mode T' <= T (the first
        T' steps' statistics are updated). hidden: one dict for the recurrent
        layer, {"pre": normalized a_t, "post": h_t}, each (N, T', H).
        `key` is accepted for the engine's protocol and unused. Eval mode
        returns the state unchanged.
        """
        if not isinstance(train, bool):
            raise TypeError(f"`train` must be True or False, got {train!r}")
        t_max, d = self.input_shape
        if x.ndim != 3 or x.shape[2] != d:
            raise ValueError(f"`x` must have shape (batch, steps, {d}), got {tuple(x.shape)}")
        steps = x.shape[1]
        if train and steps > t_max and self.norm == "batch":
            raise ValueError(f"training mode with norm='batch' needs at most {t_max} steps (one "
                             f"set of statistics per step), got {steps}")
        if len(params) != 2 or len(state) != 2:
            raise ValueError(f"`params` and `state` need 2 entries (cell, output), got "
                             f"{len(params)} and {len(state)}")
        cell, out = params
        stats = state[0]
        # The statistics each step uses: its own, or the last measured step's beyond T
        if stats:
            idx = jnp.minimum(jnp.arange(steps), t_max - 1)
            per_step = {"mean": stats["mean"][idx], "var": stats["var"][idx]}
        else:
            per_step = {}

        def step(h, inputs):
            x_t, s_t = inputs
            a = h @ cell["recurrent"]["W"] + x_t @ cell["input"]["W"]
            z, s_t = self._norm(cell, s_t, a, train)
            h = jnp.tanh(z)
            return h, (s_t, z, h)

        h0 = jnp.zeros((x.shape[0], self.hidden), x.dtype)
        h, (new_stats, zs, hs) = jax.lax.scan(step, h0, (jnp.swapaxes(x, 0, 1), per_step),
                                            unroll=self.unroll)
        logits = h @ out["W"] + out["b"]
        if train and stats:
            new_cell_state = {k: stats[k].at[:steps].set(new_stats[k]) for k in stats}
            new_state = [new_cell_state, state[1]]
        else:
            new_state = list(state)
        if return_hidden:
            hidden = [{"pre": jnp.swapaxes(zs, 0, 1), "post": jnp.swapaxes(hs, 0, 1)}]
            return logits, new_state, hidden
        return logits, new_state
