"""Multilayer perceptrons with optional batch norm (or another normalization), as plain pytrees.

`MLP` is a frozen, hashable description (sizes, activation, BN placement,
normalization kind from `bn_helpers.norms`, init scheme). Its `init`
returns (params, state): lists with one dict per layer. `apply` is a pure
function of (params, state, x) with an explicit `train` flag, so it can be
jitted, vmapped and differentiated.

Used in notebooks/00_start_here.ipynb, notebooks/03_init.ipynb and
notebooks/06_paper_experiment.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from . import batchnorm as _bn
from . import compat as _compat
from . import noise as _noise
from . import norms as _norms

__all__ = ["MLP", "ACTIVATIONS", "INITS", "init_std"]

ACTIVATIONS = {
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "linear": lambda z: z,
}
INITS = ("gaussian", "xavier", "he")
_BN_PLACES = (None, "before", "after")


def init_std(scheme: str, fan_in: int, fan_out: int, std: float = 0.01):
    """Weight std of an init scheme: Gaussian `std`, Glorot sqrt(2/(in+out)), He sqrt(2/in).

    Used in notebooks/03_init.ipynb.
    """
    if scheme == "gaussian":
        return std
    if scheme == "xavier":
        return (2.0 / (fan_in + fan_out)) ** 0.5
    if scheme == "he":
        return (2.0 / fan_in) ** 0.5
    raise ValueError(f"`init` must be one of {INITS}, got {scheme!r}")


@dataclass(frozen=True)
class MLP:
    """A fully connected network: hidden layers, then a linear output layer.

    sizes: (input, hidden..., output), e.g. (784, 100, 100, 100, 10).
    bn: None, "before" the nonlinearity (the paper's choice; the layer's bias
    is dropped because BN's beta replaces it) or "after" it.
    norm: the normalization placed where `bn` says, one of
    `bn_helpers.norms.KINDS` except "instance" (which needs spatial axes);
    "batch" (default) is batch norm. groups: for norm="group".
    momentum, eps, unbiased_var: see `bn_helpers.apply_batch_norm`;
    r_max, d_max: Batch Renormalization's clipping (norm="renorm").
    noise: scale of Santurkar et al.'s injected noise (`bn_helpers.noise`) in
    training mode, after each hidden layer's BN (or, without BN, on the input
    of the nonlinearity); 0 = none. It needs the per-step `key` that `fit` passes.
    ghost_batch: "ghost" batch norm (Hoffer et al. 2017): in training mode the
    batch is split into consecutive sub-batches of this many examples and each
    is normalized with its own statistics (the batch size must be a multiple);
    the running averages take the mean of the sub-batches' updates. None
    (default) = the whole batch. norm="batch" only.

    Used in notebooks/00_start_here.ipynb and every training notebook.
    """

    sizes: tuple
    activation: str = "relu"
    bn: str | None = None
    init: str = "he"
    init_std: float = 0.01
    momentum: float = 0.9
    eps: float = 1e-5
    unbiased_var: bool = True
    noise: float = 0.0
    norm: str = "batch"
    groups: int | None = None
    r_max: float = 3.0
    d_max: float = 5.0
    ghost_batch: int | None = None

    def __post_init__(self):
        sizes = tuple(int(s) for s in self.sizes)
        object.__setattr__(self, "sizes", sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"`sizes` needs at least (inputs, outputs), all >= 1; got {sizes}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"`activation` must be one of {tuple(ACTIVATIONS)}, got {self.activation!r}")
        if self.bn not in _BN_PLACES:
            raise ValueError(f"`bn` must be one of {_BN_PLACES}, got {self.bn!r}")
        init_std(self.init, 1, 1)  # validates the scheme name
        if self.norm not in _norms.KINDS or self.norm == "instance":
            raise ValueError(f"`norm` must be one of {tuple(k for k in _norms.KINDS if k != 'instance')} "
                             f"(instance norm needs images: use bn_helpers.CNN), got {self.norm!r}")
        if self.norm == "group" and (not isinstance(self.groups, int) or self.groups < 1
                                     or any(d % self.groups for d in sizes[1:-1])):
            raise ValueError(f"norm='group' needs `groups`, a positive int dividing every hidden "
                             f"size {sizes[1:-1]}; got {self.groups!r}")
        if not self.noise >= 0.0:
            raise ValueError(f"`noise` must be >= 0, got {self.noise}")
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"`momentum` must be in [0, 1], got {self.momentum}")
        if self.ghost_batch is not None and (
                not isinstance(self.ghost_batch, int) or isinstance(self.ghost_batch, bool)
                or self.ghost_batch < 2 or self.bn is None or self.norm != "batch"):
            raise ValueError(f"`ghost_batch` must be None or an int >= 2 with bn set and norm='batch', "
                             f"got {self.ghost_batch!r} (bn={self.bn!r}, norm={self.norm!r})")

    @property
    def num_hidden(self) -> int:
        return len(self.sizes) - 2

    @property
    def input_shape(self) -> tuple:
        """Shape of one example, as every model of the engine states it."""
        return (self.sizes[0],)

    @property
    def needs_batch(self) -> bool:
        """True when training mode uses batch statistics (so a batch needs >= 2 examples)."""
        return self.bn is not None and self.norm in _norms.STATEFUL

    def init_params(self, key, scale=1.0):
        """(params, state) for this network; `scale` multiplies every weight std.

        `scale` may be a traced value, so a sweep over init scales can be vmapped.
        """
        params, state = [], []
        keys = jax.random.split(key, len(self.sizes) - 1)
        for i, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            std = init_std(self.init, fan_in, fan_out, self.init_std) * scale
            layer = {"W": std * _compat.normal(keys[i], (fan_in, fan_out))}
            hidden = i < self.num_hidden
            if not (hidden and self.bn == "before"):
                layer["b"] = jnp.zeros(fan_out)
            layer_state = {}
            if hidden and self.bn:
                bn_params, layer_state = _norms.init_norm(self.norm, fan_out)
                layer.update(bn_params)
            params.append(layer)
            state.append(layer_state)
        return params, state

    def apply(self, params, state, x, *, train: bool, return_hidden: bool = False, key=None):
        """Forward pass: returns (logits, new_state) or, with return_hidden, (logits, new_state, hidden).

        `key` (a jax.random key or None) is the per-step randomness that `fit`
        hands every model; only `noise` uses it (required then in training mode).

        hidden is a list per hidden layer of {"pre": input to the nonlinearity,
        "post": its output}. In eval mode (train=False) BN uses the running
        statistics and the state comes back unchanged.
        """
        if not isinstance(train, bool):
            raise TypeError(f"`train` must be True or False, got {train!r}")
        if x.ndim != 2 or x.shape[-1] != self.sizes[0]:
            raise ValueError(f"`x` must have shape (batch, {self.sizes[0]}), got {tuple(x.shape)}")
        act = ACTIVATIONS[self.activation]
        noisy = train and self.noise > 0
        if noisy and key is None:
            raise ValueError("`key` is required in training mode when `noise` > 0")
        new_state, hidden = [], []
        h = x
        for i, layer in enumerate(params):
            z = h @ layer["W"]
            if "b" in layer:
                z = z + layer["b"]
            if i == self.num_hidden:
                new_state.append(state[i])
                h = z
                break
            s = state[i]
            if self.bn == "before":
                z, s = self._bn(layer, s, z, train)
            if noisy and self.bn != "after":
                z = _noise.inject(jax.random.fold_in(key, i), z, self.noise)
            a = act(z)
            if self.bn == "after":
                a, s = self._bn(layer, s, a, train)
                if noisy:
                    a = _noise.inject(jax.random.fold_in(key, i), a, self.noise)
            new_state.append(s)
            hidden.append({"pre": z, "post": a})
            h = a
        if return_hidden:
            return h, new_state, hidden
        return h, new_state

    def _bn(self, layer, s, z, train):
        bn_params = {"gamma": layer["gamma"], "beta": layer["beta"]}
        if self.norm != "batch":
            if train and self.norm in _norms.STATEFUL and z.shape[0] < 2:
                raise ValueError(f"{self.norm} norm in training mode needs a batch of at least 2 examples")
            return _norms._apply_norm(self.norm, bn_params, s, z, train=train, momentum=self.momentum,
                                      eps=self.eps, groups=self.groups, r_max=self.r_max,
                                      d_max=self.d_max, unbiased_var=self.unbiased_var)
        if not train:
            return _bn._normalize(z, s["mean"], s["var"], layer["gamma"], layer["beta"], self.eps, 1), s
        m = z.shape[0]
        if m < 2:
            raise ValueError("BN in training mode needs a batch of at least 2 examples")
        g = self.ghost_batch
        if g is None or g >= m:
            return _bn._train_step(bn_params, s, z, self.momentum, self.eps, 1, (0,), m, self.unbiased_var)
        if m % g:
            raise ValueError(f"a batch of {m} examples does not split into ghost batches of {g}")
        # Each ghost batch through the same core; the running averages take the mean update
        y, states = jax.vmap(lambda zg: _bn._train_step(bn_params, s, zg, self.momentum, self.eps, 1, (0,),
                                                        g, self.unbiased_var))(z.reshape(m // g, g, -1))
        return y.reshape(z.shape), jax.tree.map(lambda a: jnp.mean(a, 0), states)
