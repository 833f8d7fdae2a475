"""Small convolutional networks (NHWC, 3x3 convolutions, optional residual blocks) as plain pytrees.

`CNN` is a frozen, hashable description with the same model protocol as
`bn_helpers.MLP`: `input_shape`, `needs_batch`, `init_params(key, scale)` ->
(params, state) lists with one dict per layer (a run of identical layers may
be one stacked entry, see `CNN.entries`), and a pure `apply`. Every
normalization goes through `bn_helpers.norms`, whose "batch" kind is the
tested core of `bn_helpers.batchnorm`.

Used by bn_helpers.train.fit and by the notebooks on normalization layers and
deep residual networks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp

from . import compat as _compat
from . import norms as _norms
from .mlp import ACTIVATIONS, init_std

__all__ = ["CNN"]

_PLACES = ("before", "after")
_POOLS = ("max", "avg")
_DIMS = ("NHWC", "HWIO", "NHWC")


def _lax_conv(x, w, padding="SAME"):
    return jax.lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=_DIMS)


@jax.custom_vjp
def _conv(x, w):
    """3x3 "same" convolution whose gradient is written out as two convolutions.

    Inside a `lax.scan` body (the training loop, stacked layers) XLA's CPU
    backend runs autodiff's transposed convolutions in a layout ~20x slower;
    these give the same numbers at full speed (tests/test_cnn.py). Reverse
    mode only: `jax.grad` works, `jax.jvp` / `jax.hessian` do not.
    """
    return _lax_conv(x, w)


def _conv_fwd(x, w):
    return _lax_conv(x, w), (x, w)


def _conv_bwd(res, g):
    x, w = res
    kh, kw = w.shape[:2]
    dx = _lax_conv(g, jnp.flip(w, (0, 1)).transpose(0, 1, 3, 2))
    pad = (((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2))
    dw = _lax_conv(x.transpose(3, 1, 2, 0), g.transpose(1, 2, 0, 3), pad).transpose(1, 2, 0, 3)
    return dx, dw


_conv.defvjp(_conv_fwd, _conv_bwd)


def _pool(x, kind):
    """2x2 pooling with stride 2; an odd last row or column is dropped (as torch's floor)."""
    n, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c)
    return jnp.max(x, axis=(2, 4)) if kind == "max" else jnp.mean(x, axis=(2, 4))


def _as_ints(name, value, n=None):
    vals = (value,) * n if isinstance(value, int) and n is not None else tuple(value)
    if not vals or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in vals):
        raise ValueError(f"`{name}` must hold positive ints, got {value!r}")
    if n is not None and len(vals) != n:
        raise ValueError(f"`{name}` needs one entry per stage ({n}), got {value!r}")
    return vals


@dataclass(frozen=True)
class CNN:
    """Stages of 3x3 convolutions, 2x2 pooling between stages, global average pooling, a dense layer.

    channels: output channels of each stage, e.g. (16, 32).
    convs_per_stage: an int or one int per stage; in a residual network it
    counts residual blocks (two 3x3 convolutions each) after a 3x3 stem conv.
    residual: blocks x -> skip(x) + alpha * branch_scale * f(x) with nothing
    after the sum, so the skip path is the identity (a 1x1 projection, normed
    like the branch, where the channel count changes). The branch f is
    conv-norm-act-conv-norm (placement "before") or conv-act-norm-conv-act-norm
    ("after"), so it ends with its last norm; without a norm conv-act-conv.
    branch_scale: a fixed multiplier of every branch.
    norm: None or one of `bn_helpers.norms.KINDS`, placed "before" or "after"
    the nonlinearity (`placement`); a conv directly followed by a norm has no
    bias (beta replaces it). groups: for norm="group".
    zero_init_last_gamma: the last norm of each branch starts at gamma = 0.
    skip_init: a scalar alpha per block, initialised to 0 (De & Smith 2020).
    fixup: Fixup (Zhang et al. 2019), for norm=None: each branch's last conv
    and the dense layer start at 0, the first conv of each of the L branches
    is scaled by L^(-1/2), convs lose their per-channel biases in the blocks,
    and scalar biases (before each conv, the nonlinearity and the dense layer,
    after the branch) and a scalar multiplier per branch are learned.
    All three make every block with equal channels the identity at init.
    scan: keep each run of identical consecutive layers (or blocks) as ONE
    entry of params with a leading layer axis, run by `jax.lax.scan`, so a
    100-layer network compiles as fast as a 10-layer one; None (default) does
    so for runs of 8 or more, False never, True for runs of 2 or more.
    Scanned convolutions support reverse-mode autodiff only (no jax.jvp).
    """

    input_shape: tuple = (28, 28, 1)
    channels: tuple = (16, 32)
    convs_per_stage: int | tuple = 1
    residual: bool = False
    norm: str | None = None
    placement: str = "before"
    groups: int | None = None
    activation: str = "relu"
    init: str = "he"
    init_std: float = 0.01
    pool: str = "max"
    num_classes: int = 10
    momentum: float = 0.9
    eps: float = 1e-5
    unbiased_var: bool = True
    r_max: float = 3.0
    d_max: float = 5.0
    zero_init_last_gamma: bool = False
    skip_init: bool = False
    fixup: bool = False
    branch_scale: float = 1.0
    scan: bool | None = None

    # bnh.fit_many runs a CNN's configs one after another in its one program (not vmapped)
    map_configs = True

    def __post_init__(self):
        shape = _as_ints("input_shape", self.input_shape)
        if len(shape) != 3:
            raise ValueError(f"`input_shape` must be (height, width, channels), got {self.input_shape!r}")
        channels = _as_ints("channels", self.channels)
        object.__setattr__(self, "input_shape", shape)
        object.__setattr__(self, "channels", channels)
        object.__setattr__(self, "convs_per_stage",
                           _as_ints("convs_per_stage", self.convs_per_stage, len(channels)))
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"`activation` must be one of {tuple(ACTIVATIONS)}, got {self.activation!r}")
        if self.norm is not None and self.norm not in _norms.KINDS:
            raise ValueError(f"`norm` must be None or one of {_norms.KINDS}, got {self.norm!r}")
        if self.placement not in _PLACES:
            raise ValueError(f"`placement` must be one of {_PLACES}, got {self.placement!r}")
        if self.pool not in _POOLS:
            raise ValueError(f"`pool` must be one of {_POOLS}, got {self.pool!r}")
        init_std(self.init, 1, 1)  # validates the scheme name
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"`momentum` must be in [0, 1], got {self.momentum}")
        if self.norm == "group" and (not isinstance(self.groups, int) or self.groups < 1
                                     or any(c % self.groups for c in channels)):
            raise ValueError(f"norm='group' needs `groups`, a positive int dividing every channel "
                             f"count {channels}; got {self.groups!r}")
        if min(shape[:2]) < 2 ** (len(channels) - 1):
            raise ValueError(f"{len(channels) - 1} poolings do not fit an input of {shape[:2]}")
        if not self.residual and (self.zero_init_last_gamma or self.skip_init or self.fixup
                                  or self.branch_scale != 1.0):
            raise ValueError("`zero_init_last_gamma`, `skip_init`, `fixup` and `branch_scale` need "
                             "residual=True")
        if self.fixup and (self.norm is not None or self.skip_init):
            raise ValueError("`fixup` replaces normalization: it needs norm=None and skip_init=False, "
                             f"got norm={self.norm!r}, skip_init={self.skip_init!r}")
        if self.zero_init_last_gamma and self.norm is None:
            raise ValueError("`zero_init_last_gamma` needs a norm (norm=None has no gamma)")

    @property
    def needs_batch(self) -> bool:
        """True when training mode uses batch statistics (so a batch needs >= 2 examples)."""
        return self.norm in _norms.STATEFUL

    def _layout(self):
        """(stage, c_in, c_out) per layer: conv layers, or the stem then blocks when residual."""
        out, c_in = [], self.input_shape[2]
        if self.residual:
            out.append((0, c_in, self.channels[0]))
            c_in = self.channels[0]
        for s, (c, n) in enumerate(zip(self.channels, self.convs_per_stage)):
            for _ in range(n):
                out.append((s, c_in, c))
                c_in = c
        return out

    def entries(self):
        """(stage, c_in, c_out, n) for each entry of params; n > 1 is a run of n identical stacked layers.

        A stacked entry's arrays have a leading axis of length n, and `apply`
        runs it with one `lax.scan`; see the `scan` field.
        """
        layout, out, i = self._layout(), [], 0
        while i < len(layout):
            j = i + 1
            if not (self.residual and i == 0) and layout[i][1] == layout[i][2]:
                while j < len(layout) and layout[j] == layout[i]:
                    j += 1
            n = j - i
            if n > 1 and not (self.scan if self.scan is not None else n >= 8):
                out.extend([layout[i] + (1,)] * n)
            else:
                out.append(layout[i] + (n,))
            i = j
        return out

    # --- parameters --------------------------------------------------------------

    def _conv_layer(self, key, c_in, c_out, scale, *, k=3, normed=True, gamma=1.0):
        std = init_std(self.init, k * k * c_in, k * k * c_out, self.init_std) * scale
        p = {"W": std * _compat.normal(key, (k, k, c_in, c_out))}
        if not (normed and self.norm and self.placement == "before"):
            p["b"] = jnp.zeros(c_out)
        s = {}
        if normed and self.norm:
            norm_p, s = _norms.init_norm(self.norm, c_out)
            p.update(norm_p)
            p["gamma"] = p["gamma"] * gamma
        return p, s

    def _fixup_block(self, k1, c_in, c_out, scale):
        """Fixup's branch: conv1 scaled by L^(-1/2), conv2 zero, no per-channel biases, scalars."""
        p1, _ = self._conv_layer(k1, c_in, c_out, scale * sum(self.convs_per_stage) ** -0.5)
        zero = jnp.zeros(())
        p = {"conv1": {"W": p1["W"]}, "conv2": {"W": jnp.zeros((3, 3, c_out, c_out))},
             "fixup": {"bias1a": zero, "bias1b": zero, "bias2a": zero, "bias2b": zero,
                       "scale": jnp.ones(())}}
        return p, {"conv1": {}, "conv2": {}}

    def _init_layer(self, block, c_in, c_out, scale, key):
        if not block:
            return self._conv_layer(key, c_in, c_out, scale)
        k1, k2, k3 = jax.random.split(key, 3)
        if self.fixup:
            p, s = self._fixup_block(k1, c_in, c_out, scale)
            if c_in != c_out:
                p["proj"], s["proj"] = self._conv_layer(k3, c_in, c_out, scale, k=1)
            return p, s
        p1, s1 = self._conv_layer(k1, c_in, c_out, scale)
        p2, s2 = self._conv_layer(k2, c_out, c_out, scale, gamma=0.0 if self.zero_init_last_gamma else 1.0)
        p, s = {"conv1": p1, "conv2": p2}, {"conv1": s1, "conv2": s2}
        if c_in != c_out:
            p["proj"], s["proj"] = self._conv_layer(k3, c_in, c_out, scale, k=1)
        if self.skip_init:
            p["alpha"] = jnp.zeros(())
        return p, s

    def init_params(self, key, scale=1.0):
        """(params, state): one dict per conv layer (stem, residual block), then the dense layer.

        `scale` multiplies every weight std and may be traced (vmapped init sweeps).
        A residual block's dict holds "conv1", "conv2", optionally "proj", "alpha" or "fixup".
        A run of identical layers run by scan is one entry with stacked arrays (`entries`).
        """
        entries = self.entries()
        keys = jax.random.split(key, len(entries) + 1)
        params, state = [], []
        for e, (_, c_in, c_out, n) in enumerate(entries):
            make = partial(self._init_layer, self.residual and e > 0, c_in, c_out, scale)
            p, s = make(keys[e]) if n == 1 else jax.vmap(make)(jax.random.split(keys[e], n))
            params.append(p)
            state.append(s)
        c = self.channels[-1]
        std = init_std(self.init, c, self.num_classes, self.init_std) * scale
        dense = {"W": std * _compat.normal(keys[-1], (c, self.num_classes)),
                 "b": jnp.zeros(self.num_classes)}
        if self.fixup:
            dense = {"W": jnp.zeros_like(dense["W"]), "b": dense["b"], "bias_in": jnp.zeros(())}
        params.append(dense)
        state.append({})
        return params, state

    # --- forward -----------------------------------------------------------------

    def _norm(self, p, s, z, train):
        norm_p = {"gamma": p["gamma"], "beta": p["beta"]}
        return _norms._apply_norm(self.norm, norm_p, s, z, train=train, momentum=self.momentum,
                                  eps=self.eps, groups=self.groups, r_max=self.r_max,
                                  d_max=self.d_max, unbiased_var=self.unbiased_var)

    def _unit(self, p, s, h, train, *, act=True):
        """conv (+ bias), then norm and nonlinearity in `placement` order; act=False drops the latter."""
        z = _conv(h, p["W"])
        if "b" in p:
            z = z + p["b"]
        f = ACTIVATIONS[self.activation] if act else (lambda v: v)
        if self.norm and self.placement == "before":
            z, s = self._norm(p, s, z, train)
        a = f(z)
        if self.norm and self.placement == "after":
            a, s = self._norm(p, s, a, train)
        return a, s, {"pre": z, "post": a}

    def _layer(self, block, p, s, h, train):
        """One conv layer (-> 1 hidden dict) or one residual block (-> 2)."""
        if not block:
            h, s, rec = self._unit(p, s, h, train)
            return h, s, [rec]
        if self.fixup:
            return self._fixup_layer(p, s, h, train)
        after = self.placement == "after"
        u, s1, r1 = self._unit(p["conv1"], s["conv1"], h, train)
        f, s2, r2 = self._unit(p["conv2"], s["conv2"], u, train, act=after)
        new_s = {"conv1": s1, "conv2": s2}
        skip = h
        if "proj" in p:
            skip, new_s["proj"], _ = self._unit(p["proj"], s["proj"], h, train, act=False)
        branch = f * self.branch_scale
        if "alpha" in p:
            branch = p["alpha"] * branch
        out = skip + branch
        r2 = {"pre": r2["pre"] if after else f, "post": out, "branch": branch, "skip": skip}
        return out, new_s, [r1, r2]

    def _fixup_layer(self, p, s, h, train):
        """x + branch_scale * (scale * conv2(act(conv1(x + b1a) + b1b) + b2a) + b2b)."""
        fx = p["fixup"]
        x_in = h + fx["bias1a"]
        z = _conv(x_in, p["conv1"]["W"]) + fx["bias1b"]
        u = ACTIVATIONS[self.activation](z)
        f = _conv(u + fx["bias2a"], p["conv2"]["W"]) * fx["scale"] + fx["bias2b"]
        skip, new_s = h, dict(s)
        if "proj" in p:
            skip, new_s["proj"], _ = self._unit(p["proj"], s["proj"], x_in, train, act=False)
        branch = f * self.branch_scale
        out = skip + branch
        return out, new_s, [{"pre": z, "post": u},
                            {"pre": f, "post": out, "branch": branch, "skip": skip}]

    def apply(self, params, state, x, *, train: bool, key=None, return_hidden: bool = False):
        """Forward pass: (logits, new_state), or with return_hidden (logits, new_state, hidden).

        hidden: one dict per 3x3 conv layer (also inside stacked entries),
        {"pre": input to the nonlinearity, "post": its output}. For the second
        conv of a residual block "pre" is the branch output f(x) when the
        branch ends without a nonlinearity, "post" the block output, "branch"
        alpha * branch_scale * f(x) and "skip" the skip path (post = skip +
        branch). `key` is accepted for the engine's protocol and unused. Eval
        mode returns the state unchanged.
        """
        if not isinstance(train, bool):
            raise TypeError(f"`train` must be True or False, got {train!r}")
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"`x` must have shape (batch, {', '.join(map(str, self.input_shape))}) "
                             f"(NHWC), got {tuple(x.shape)}")
        entries = self.entries()
        if len(params) != len(entries) + 1 or len(state) != len(params):
            raise ValueError(f"`params` and `state` need {len(entries) + 1} entries (see CNN.entries: "
                             f"runs of identical layers are stacked), got {len(params)} and {len(state)}")
        new_state, hidden, h = [], [], x
        for e, (stage, _, _, n) in enumerate(entries):
            if e > 0 and stage != entries[e - 1][0]:
                h = _pool(h, self.pool)
            block = self.residual and e > 0
            if n == 1:
                h, s, recs = self._layer(block, params[e], state[e], h, train)
            else:
                h, s, recs = self._scan(block, n, params[e], state[e], h, train, return_hidden)
            new_state.append(s)
            hidden.extend(recs)
        h = jnp.mean(h, axis=(1, 2))
        if "bias_in" in params[-1]:
            h = h + params[-1]["bias_in"]
        logits = h @ params[-1]["W"] + params[-1]["b"]
        new_state = new_state + [state[-1]] if train else list(state)
        if return_hidden:
            return logits, new_state, hidden
        return logits, new_state

    def _scan(self, block, n, params, state, h, train, return_hidden):
        """n identical stacked layers in one `lax.scan`: one compiled body instead of n."""

        def body(h, ps):
            h, s, recs = self._layer(block, ps[0], ps[1], h, train)
            return h, (s, recs if return_hidden else None)

        h, (state, recs) = jax.lax.scan(body, h, (params, state))
        recs = [jax.tree.map(lambda a, k=k: a[k], r) for k in range(n) for r in recs] if return_hidden else []
        return h, state, recs
