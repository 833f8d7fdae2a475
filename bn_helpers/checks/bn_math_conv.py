"""Check for the BN-on-convolutions exercise: NHWC and NCHW batches, per-channel statistics over
the batch and both spatial axes (float64), with the usual axis and reshape mistakes named.

Used in notebooks/04_bn_math.ipynb.
"""

from __future__ import annotations

import numpy as np

from ._core import CheckFailed, Verdict, as_array, check, grading_mode, rel_error, student, verdict
from ..compat import enable_x64
from .bn_math import MATCH

def _conv_case(seed: int, layout: str, shape=(4, 5, 6, 3)):
    """A shifted NHWC or NCHW batch whose channels have very different means and scales and
    whose image rows differ a little (so per-row statistics show)."""
    rng = np.random.default_rng(seed)
    n, h, w, c = shape
    x = rng.standard_normal((n, h, w, c)) * (1.0 + np.arange(c)) + 10.0 * np.arange(c) + 5.0
    x = x + rng.standard_normal((1, h, 1, 1))
    gamma = rng.uniform(0.5, 2.0, c)
    beta = rng.standard_normal(c)
    if layout == "NCHW":
        x = np.transpose(x, (0, 3, 1, 2))
    return x, gamma, beta, 3 if layout == "NHWC" else 1


def _conv_cases():
    specs = [(2, "NHWC", (4, 5, 6, 3)), (2, "NCHW", (4, 5, 6, 3)),
             (5, "NCHW", (3, 4, 3, 3)), (6, "NHWC", (2, 3, 4, 5))]
    if grading_mode():
        specs += [(14, "NHWC", (5, 2, 3, 4)), (15, "NCHW", (2, 6, 5, 2))]
    return [_conv_case(seed, layout, shape) for seed, layout, shape in specs]


def _conv_bn(x, g, b, ca, eps, *, axes=None, ddof=0, root="inside", reshape=True):
    others = tuple(i for i in range(4) if i != ca)
    axes = others if axes is None else axes
    shape = [1] * 4
    shape[ca] = -1
    if reshape:
        g, b = np.reshape(g, shape), np.reshape(b, shape)
    m = x.mean(axis=axes, keepdims=True)
    v = x.var(axis=axes, keepdims=True, ddof=ddof)
    s = np.sqrt(v + eps) if root == "inside" else np.sqrt(v) + eps if root == "outside" \
        else np.sqrt(v)
    return g * (x - m) / s + b


def _nchw_axes(x, g, b, ca, eps):
    return _conv_bn(x, g, b, ca, eps, axes=(0, 2, 3)) if ca == 3 else None


def _nhwc_axes(x, g, b, ca, eps):
    return _conv_bn(x, g, b, ca, eps, axes=(0, 1, 2)) if ca == 1 else None


def _either(x, g, b, ca, eps, nhwc_fn):
    """A mistake that only shows in one layout: the right answer in the other."""
    wrong = nhwc_fn(x, g, b, ca, eps)
    return _conv_bn(x, g, b, ca, eps) if wrong is None else wrong


def _unreshaped(x, g, b, ca, eps):
    """gamma and beta (C,) left unreshaped: NumPy broadcasts them along the last axis."""
    if ca == 3 or x.shape[3] == len(g):
        return _conv_bn(x, g, b, ca, eps, reshape=False)
    return None


CONV_MISTAKES = (
    ("NCHW axes on NHWC", lambda *a: _either(*a, _nchw_axes),
     "on NHWC data you averaged over (0, 2, 3), NCHW's axes: that gives one mean per image row; "
     "average over (0, 1, 2), every axis but the channel's"),
    ("NHWC axes on NCHW", lambda *a: _either(*a, _nhwc_axes),
     "on NCHW data (channel_axis=1) you averaged over (0, 1, 2), NHWC's axes: use every axis "
     "but channel_axis, here (0, 2, 3)"),
    ("batch axis only", lambda x, g, b, ca, e: _conv_bn(x, g, b, ca, e, axes=(0,)),
     "you averaged over the batch axis only (one mean per pixel); a conv channel shares its "
     "statistics over N, H and W"),
    ("per image and channel", lambda x, g, b, ca, e: _conv_bn(
        x, g, b, ca, e, axes=tuple(i for i in range(1, 4) if i != ca)),
     "you took statistics per image and channel (over H and W only, instance norm); BN also "
     "averages over the batch axis"),
    ("per image", lambda x, g, b, ca, e: _conv_bn(x, g, b, ca, e, axes=(1, 2, 3)),
     "you normalized each image separately (over H, W and C); BN takes one mean per channel "
     "over N, H and W"),
    ("unbiased variance", lambda x, g, b, ca, e: _conv_bn(x, g, b, ca, e, ddof=1),
     "use the biased variance (divide by N*H*W, not N*H*W - 1)"),
    ("forgot eps", lambda x, g, b, ca, e: _conv_bn(x, g, b, ca, e, root="none"),
     "eps is missing: divide by sqrt(var + eps)"),
    ("eps outside", lambda x, g, b, ca, e: _conv_bn(x, g, b, ca, e, root="outside"),
     "eps goes inside the square root: sqrt(var + eps), not sqrt(var) + eps"),
    ("gamma not reshaped", _unreshaped,
     "gamma and beta broadcast along the last axis: reshape them so their C values lie along "
     "channel_axis, e.g. (1, C, 1, 1) for NCHW"),
    ("no gamma, no beta", lambda x, g, b, ca, e: _conv_bn(x, np.ones_like(g), np.zeros_like(b),
                                                          ca, e),
     "gamma and beta are missing: y = gamma * x_hat + beta, per channel"),
)


@check("batch_norm conv (NHWC and NCHW)")
def check_batch_norm_conv(fn, *, eps: float = 1e-5) -> Verdict:
    """Check fn(x, gamma, beta, channel_axis) -> y, BN with per-channel statistics over
    (N, H, W), on NHWC (channel_axis=3) and NCHW (channel_axis=1) batches of several shapes
    in float64. The value reported is the worst case's relative error.

    Used in notebooks/04_bn_math.ipynb.
    """
    name = "batch_norm conv (NHWC and NCHW)"
    cases = _conv_cases()
    with enable_x64(True):
        outputs, errs = [], []
        for x, g, b, ca in cases:
            layout = "NHWC" if ca == 3 else "NCHW"
            try:
                got = student(fn, x, g, b, ca)
            except CheckFailed as err:
                if "broadcast" in err.what.lower() or "incompatible shapes" in err.what.lower():
                    raise CheckFailed(f"{layout}: {err.what}", CONV_MISTAKES[8][2]) from None
                raise
            got = as_array(got, x.shape, what=f"{layout} output")
            outputs.append(got)
            errs.append((rel_error(got, _conv_bn(x, g, b, ca, eps)), layout))
        worst, layout = max(errs)
        hint = ""
        if worst > 1e-7:
            hint = None
            for _key, wrong, text in CONV_MISTAKES:
                refs = [wrong(x, g, b, ca, eps) for x, g, b, ca in cases]
                if all(r is not None and rel_error(o, r) < MATCH
                       for o, r in zip(outputs, refs, strict=True)):
                    hint = text
                    break
            if hint is None:
                others = tuple(i for i in range(4) if i != (3 if layout == "NHWC" else 1))
                hint = (f"for {layout} data, average over axes {others} and reshape gamma and "
                        "beta so they broadcast along the channel axis")
        return verdict(name, worst, tol=1e-7, what=f"max rel error ({layout})", hint=hint)
