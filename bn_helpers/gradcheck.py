"""The mathematics of batch norm, one step at a time: forward intermediates, the paper's
staged backward pass, finite differences in two precisions, and small demos.

Everything here follows Ioffe & Szegedy's Algorithm 1 and their chain-rule equations
(arXiv 1502.03167, section 3). The closed-form backward lives in
`bn_helpers.batchnorm.batch_norm_backward`; this module gives the longer route next to
it, so a notebook can show that the two agree.

Used in notebooks/04_bn_math.ipynb.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from . import batchnorm as _bn
from .checks._core import BANDS, float64_pair, rel_error
from .compat import enable_x64

__all__ = [
    "forward_steps",
    "staged_backward",
    "numerical_gradient",
    "gradient_errors",
    "fd_error_curve",
    "band",
    "cs231n_band",
    "vector_rel_error",
    "CS231N_BANDS",
    "FLOAT32_EPS",
    "identity_demo",
    "eps_std_deviation",
    "draw_graph",
    "moved_outputs",
    "normalize_over",
    "conv_channel_moments",
    "identity_params",
    "weight_gradient_scaling",
    "eps_gain",
]


# --- checks on the arguments ---------------------------------------------------


def _setup(x, gamma, feature_axis):
    x = _bn._check_array("x", x, min_ndim=2)
    ax = _bn._feature_axis(feature_axis, x.ndim)
    axes = _bn.reduce_axes(x.ndim, ax)
    gamma, _ = _bn._check_params(x, gamma, jnp.zeros(x.shape[ax]), ax)
    m = _bn._check_batch(x, axes)
    return x, gamma, ax, axes, m


def _check_eps(eps):
    if not isinstance(eps, (int, float, np.floating)) or eps < 0:
        raise ValueError(f"`eps` must be a number >= 0, got {eps!r}")


# --- forward and backward, step by step -----------------------------------------


def forward_steps(x, gamma, beta, *, eps: float = 1e-5, feature_axis: int = -1) -> dict:
    """Algorithm 1 one line at a time; returns every intermediate.

    Keys: mean, var (biased, per feature), centred = x - mean, std = sqrt(var + eps),
    x_hat = centred / std, y = gamma * x_hat + beta. Statistics have one value per
    feature; the others have the shape of x.

    Used in notebooks/04_bn_math.ipynb.
    """
    _check_eps(eps)
    x, gamma, ax, axes, _ = _setup(x, gamma, feature_axis)
    gamma, beta = _bn._check_params(x, gamma, beta, ax)
    shape = _bn._bshape(x.ndim, ax)
    mean = jnp.mean(x, axis=axes)
    centred = x - mean.reshape(shape)
    var = jnp.mean(centred**2, axis=axes)
    std = jnp.sqrt(var + eps)
    x_hat = centred / std.reshape(shape)
    y = gamma.reshape(shape) * x_hat + beta.reshape(shape)
    return {"mean": mean, "var": var, "centred": centred, "std": std, "x_hat": x_hat, "y": y}


def staged_backward(dy, x, gamma, *, eps: float = 1e-5, feature_axis: int = -1) -> dict:
    """The paper's chain rule, one equation per line: through x_hat, the variance and the mean.

    Returns dx_hat, dvar, dmean, dx, dgamma, dbeta (dvar and dmean per feature). dx is
    the sum of three paths: dx_hat / std + dvar * 2 (x - mean) / m + dmean / m.

    Used in notebooks/04_bn_math.ipynb.
    """
    _check_eps(eps)
    x, gamma, ax, axes, m = _setup(x, gamma, feature_axis)
    dy = _bn._check_array("dy", dy, min_ndim=2)
    if dy.shape != x.shape:
        raise ValueError(f"`dy` must have the shape of x {tuple(x.shape)}, got {tuple(dy.shape)}")
    shape = _bn._bshape(x.ndim, ax)
    mean = jnp.mean(x, axis=axes).reshape(shape)
    centred = x - mean
    var = jnp.mean(centred**2, axis=axes).reshape(shape)
    std = jnp.sqrt(var + eps)
    x_hat = centred / std
    dx_hat = dy * gamma.reshape(shape)
    dvar = jnp.sum(dx_hat * centred, axis=axes, keepdims=True) * -0.5 * (var + eps) ** -1.5
    dmean = (jnp.sum(-dx_hat / std, axis=axes, keepdims=True)
             + dvar * jnp.sum(-2.0 * centred, axis=axes, keepdims=True) / m)
    dx = dx_hat / std + dvar * 2.0 * centred / m + dmean / m
    return {"dx_hat": dx_hat, "dvar": dvar.reshape(-1), "dmean": dmean.reshape(-1), "dx": dx,
            "dgamma": jnp.sum(dy * x_hat, axis=axes), "dbeta": jnp.sum(dy, axis=axes)}


# --- finite differences -----------------------------------------------------------


def _check_fd_args(h, dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"`dtype` must be float32 or float64, got {dtype}")
    if not np.isscalar(h) or not h > 0:
        raise ValueError(f"`h` must be a positive number, got {h!r}")
    return dtype


def _fd_program(f, shape, dtype):
    """One compiled program (x, h) -> centred differences of f at x for every entry."""
    n = int(np.prod(shape))

    @jax.jit
    def run(x, h):
        steps = (jnp.eye(n, dtype=dtype) * h).reshape((n, *shape))
        fv = jax.vmap(f)
        return (fv(x + steps) - fv(x - steps)) / (2 * h)

    return run


def numerical_gradient(f, x, *, h: float, dtype=np.float64):
    """Centred finite differences (f(x + h e_i) - f(x - h e_i)) / 2h for every entry of x.

    f maps an array shaped like x to a scalar; every evaluation runs in `dtype`
    (np.float32 or np.float64), in one vmapped batch. Returns a NumPy float64 array.

    Used in notebooks/04_bn_math.ipynb.
    """
    dtype = _check_fd_args(h, dtype)
    x = np.asarray(x, dtype=np.float64)
    with enable_x64(dtype == np.float64):
        run = _fd_program(f, x.shape, dtype)
        out = run(jnp.asarray(x, dtype=dtype), jnp.asarray(h, dtype=dtype))
        return np.asarray(out, dtype=np.float64).reshape(x.shape)


FLOAT32_EPS = float(np.finfo(np.float32).eps)  # 2**-23 = 1.19e-7, the spacing of float32 near 1

# CS231n's notes (neural-networks-3, "Gradient checks") read a relative error as follows
CS231N_BANDS = ((1e-7, "you should be happy"),
                (1e-4, "too high unless the objective has kinks"),
                (1e-2, "should make you feel uncomfortable"),
                (np.inf, "the gradient is probably wrong"))


def vector_rel_error(a, b) -> float:
    """Whole-vector relative error ||a - b|| / ||a + b|| (0 if both are 0), beside CS231n's
    element-wise maximum: one tiny entry cannot dominate it.

    Used in notebooks/04_bn_math.ipynb.
    """
    a, b = float64_pair(a, b)
    if a is None:
        return float("inf")
    den = np.linalg.norm(a + b)
    return float(np.linalg.norm(a - b) / den) if den > 0 else 0.0


def _measure(measure):
    if measure not in ("elementwise", "vector"):
        raise ValueError(f"`measure` must be 'elementwise' or 'vector', got {measure!r}")
    return rel_error if measure == "elementwise" else vector_rel_error


def _loss(dy, gamma, beta, eps, feature_axis):
    """x -> sum(dy * BN(x)): its gradient with respect to x is BN's dx for upstream dy."""
    # NumPy constants, so a float32 program gets float32 copies (jax < 0.5 mixed dtypes otherwise)
    dy, gamma, beta = (np.asarray(a, dtype=np.float64) for a in (dy, gamma, beta))
    return lambda x_: jnp.sum(dy.astype(x_.dtype) * _bn.batch_norm(
        x_, gamma.astype(x_.dtype), beta.astype(x_.dtype), eps=eps, feature_axis=feature_axis))


def gradient_errors(x, gamma, beta, dy, *, eps: float = 1e-5, h64: float = 1e-5,
                    h32: float = 1e-3, feature_axis: int = -1,
                    measure: str = "elementwise") -> dict:
    """Relative errors of four routes to dx against the float64 closed form, plus the closed form
    itself computed in float32.

    measure="elementwise": CS231n's max |a - b| / max(1e-8, |a| + |b|); "vector":
    ||a - b|| / ||a + b||. All in float64 except the two float32 rows. Keys: "staged (paper)",
    "jax.vjp", "finite differences, float64", "finite differences, float32",
    "closed form in float32".

    Used in notebooks/04_bn_math.ipynb.
    """
    _check_eps(eps)
    err = _measure(measure)
    with enable_x64(False):
        f32 = [jnp.asarray(np.asarray(a), jnp.float32) for a in (dy, x, gamma)]
        closed32 = np.asarray(_bn.batch_norm_backward(*f32, eps=eps, feature_axis=feature_axis)[0],
                              dtype=np.float64)
    with enable_x64(True):
        x = jnp.asarray(x, jnp.float64)
        gamma, beta, dy = (jnp.asarray(a, jnp.float64) for a in (gamma, beta, dy))
        closed, _, _ = _bn.batch_norm_backward(dy, x, gamma, eps=eps, feature_axis=feature_axis)
        staged = staged_backward(dy, x, gamma, eps=eps, feature_axis=feature_axis)["dx"]
        _, vjp = jax.vjp(lambda a: _bn.batch_norm(a, gamma, beta, eps=eps,
                                                  feature_axis=feature_axis), x)
        (auto,) = vjp(dy)
        f = _loss(dy, gamma, beta, eps, feature_axis)
        fd64 = numerical_gradient(f, x, h=h64, dtype=np.float64)
        fd32 = numerical_gradient(f, x, h=h32, dtype=np.float32)
        closed = np.asarray(closed)
        return {"staged (paper)": err(staged, closed), "jax.vjp": err(auto, closed),
                "finite differences, float64": err(fd64, closed),
                "finite differences, float32": err(fd32, closed),
                "closed form in float32": err(closed32, closed)}


def fd_error_curve(x, gamma, beta, dy, hs, *, dtype, eps: float = 1e-5,
                   feature_axis: int = -1, measure: str = "elementwise") -> np.ndarray:
    """Relative error of centred finite differences in `dtype` against the float64 closed form,
    one value per step size in `hs` (measure "elementwise", CS231n's, or "vector").

    Used in notebooks/04_bn_math.ipynb.
    """
    err = _measure(measure)
    hs = np.atleast_1d(np.asarray(hs, dtype=np.float64))
    if hs.ndim != 1 or not np.all(hs > 0):
        raise ValueError("`hs` must be a 1-D list of positive step sizes")
    with enable_x64(True):
        x = jnp.asarray(x, jnp.float64)
        gamma, beta, dy = (jnp.asarray(a, jnp.float64) for a in (gamma, beta, dy))
        closed = np.asarray(_bn.batch_norm_backward(dy, x, gamma, eps=eps,
                                                    feature_axis=feature_axis)[0])
        f = _loss(dy, gamma, beta, eps, feature_axis)
        dtype = _check_fd_args(1.0, dtype)
        x_np = np.asarray(x)
    with enable_x64(dtype == np.float64):
        run = _fd_program(f, x_np.shape, dtype)  # compiled once, reused for every h
        xs = jnp.asarray(x_np, dtype=dtype)
        return np.array([err(np.asarray(run(xs, jnp.asarray(h, dtype)), np.float64)
                             .reshape(x_np.shape), closed)
                         for h in hs])


def band(err: float) -> str:
    """CS231n's reading of a relative error: PASS (< 1e-7), CLOSE (< 1e-4) or FAIL.

    Used in notebooks/04_bn_math.ipynb.
    """
    for limit, name in BANDS:
        if err <= limit:
            return name
    return "FAIL"


def cs231n_band(err: float) -> str:
    """CS231n's own words for a relative error (their notes on gradient checks): above 1e-2
    "the gradient is probably wrong", 1e-4 to 1e-2 "uncomfortable", 1e-7 to 1e-4 "too high
    unless the objective has kinks", 1e-7 and less "happy".

    Used in notebooks/04_bn_math.ipynb.
    """
    for limit, name in CS231N_BANDS:
        if err <= limit:
            return name
    return CS231N_BANDS[-1][1]


# --- the computation graph ---------------------------------------------------------

_NODES = {  # name: (x, y, label)
    "x": (0.0, 1.0, r"$x_i$"),
    "mu": (1.3, 2.0, r"$\mu_B$"),
    "xc": (2.6, 1.0, r"$x_i-\mu_B$"),
    "var": (3.9, 2.0, r"$\sigma_B^2$"),
    "inv": (5.2, 2.0, r"$1/\sqrt{\sigma_B^2+\epsilon}$"),
    "xhat": (6.5, 1.0, r"$\hat x_i$"),
    "gamma": (6.5, 0.0, r"$\gamma$"),
    "beta": (7.8, 0.0, r"$\beta$"),
    "y": (7.8, 1.0, r"$y_i$"),
}
_EDGES = [("x", "mu", "mean"), ("x", "xc", "direct"), ("mu", "xc", "mean"), ("xc", "var", "var"),
          ("var", "inv", "var"), ("inv", "xhat", "var"), ("xc", "xhat", "direct"),
          ("xhat", "y", "out"), ("gamma", "y", "out"), ("beta", "y", "out")]


def draw_graph(ax):
    """Draw BN's forward computation graph on `ax`; x reaches x_hat by three paths, drawn
    solid, dashed and dotted (directly, through the mean, through the variance).

    Used in notebooks/04_bn_math.ipynb.
    """
    # one dark colour, three line styles: the notebook's colours keep their meanings elsewhere
    colors = {"direct": "0.1", "mean": "0.1", "var": "0.1", "out": "0.55"}
    styles = {"direct": "-", "mean": (0, (5, 2)), "var": (0, (1, 1.5)), "out": "-"}
    boxes = {}
    for name, (x0, y0, text) in _NODES.items():
        param = name in ("gamma", "beta")
        boxes[name] = ax.text(x0, y0, text, ha="center", va="center", fontsize=12, zorder=3,
                              bbox=dict(boxstyle="round,pad=0.35", fc="#FFF6D5" if param else "white",
                                        ec="0.3", lw=1))
    for a, b, kind in _EDGES:
        # Arrows start and end at the boxes' edges, whatever the boxes' widths
        ax.annotate("", xy=(0.5, 0.5), xycoords=boxes[b], xytext=(0.5, 0.5), textcoords=boxes[a],
                    arrowprops=dict(arrowstyle="-|>", color=colors[kind], lw=2.0, shrinkA=3,
                                    linestyle=styles[kind],
                                    shrinkB=3, mutation_scale=14,
                                    patchA=boxes[a].get_bbox_patch(),
                                    patchB=boxes[b].get_bbox_patch()))
    for kind, text in (("direct", "direct path"), ("mean", "through the mean"),
                       ("var", "through the variance")):
        ax.plot([], [], color=colors[kind], ls=styles[kind], lw=2, label=text)
    ax.legend(loc="lower left", fontsize=9)
    ax.set_xlim(-0.6, 8.4)
    ax.set_ylim(-0.9, 2.5)
    ax.set_axis_off()
    return ax


# --- demos -------------------------------------------------------------------------


@jax.jit
def _moved(x, value, gamma, beta):
    x = x.at[0].set(value)
    mean, var = _bn._moments(x, (0,))
    y = _bn._normalize(x, mean, var, gamma, beta, 1e-5, 1)
    return y, mean, jnp.sqrt(var)


def moved_outputs(x, value):
    """BN outputs of a batch x (N, D) after sample 0 is set to `value` (gamma 1, beta 0).

    Returns (y, mean, std) with y (N, D). Jitted once per batch shape; used by the
    "a sample's output depends on its batch" slider.

    Used in notebooks/04_bn_math.ipynb.
    """
    x = _bn._check_array("x", x, min_ndim=2)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"`x` must have shape (N, D) with N >= 2, got {tuple(x.shape)}")
    d = x.shape[1]
    return _moved(x, jnp.asarray(value, x.dtype), jnp.ones(d, x.dtype), jnp.zeros(d, x.dtype))


def normalize_over(x, axes, *, eps: float = 1e-5):
    """Normalize x with mean and variance taken over `axes` (right or wrong), no gamma/beta.

    Returns (x_hat, mean) with the statistics' keepdims shape, as buggy code would get it.

    Used in notebooks/04_bn_math.ipynb (the NHWC reduce-axis mistake).
    """
    x = _bn._check_array("x", x, min_ndim=2)
    axes = tuple(int(a) % x.ndim for a in axes)
    if not axes or len(set(axes)) != len(axes):
        raise ValueError(f"`axes` must list distinct axes of x, got {axes}")
    mean = jnp.mean(x, axis=axes, keepdims=True)
    var = jnp.mean((x - mean) ** 2, axis=axes, keepdims=True)
    return (x - mean) / jnp.sqrt(var + eps), mean


def conv_channel_moments(y, channel_axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of y over every other axis (N, H, W).

    Used in notebooks/04_bn_math.ipynb.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 4:
        raise ValueError(f"`y` must be 4-D (NHWC or NCHW), got shape {y.shape}")
    axes = _bn.reduce_axes(4, channel_axis)
    return y.mean(axis=axes), y.std(axis=axes)


def identity_params(x, *, eps: float = 1e-5, feature_axis: int = -1):
    """gamma = sqrt(var + eps) and beta = mean of the batch: with them BN returns x itself.

    Used in notebooks/04_bn_math.ipynb.
    """
    x = _bn._check_array("x", x, min_ndim=2)
    axes = _bn.reduce_axes(x.ndim, feature_axis)
    mean, var = _bn._moments(x, axes)
    return jnp.sqrt(var + eps), mean


def weight_gradient_scaling(u, w, gamma, beta, target, scales, *, eps: float = 0.0) -> dict:
    """For a layer BN(u @ (a w)) and loss sum(target * output), per scale a (float64):
    the norm of W, the norm of dL/dW and the cosine between dL/dW and W.

    Used in notebooks/04_bn_math.ipynb (scale invariance, effective learning rate).
    """
    u = _bn._check_array("u", u, min_ndim=2)
    w = _bn._check_array("w", w, min_ndim=2)
    if u.shape[1] != w.shape[0]:
        raise ValueError(f"`w` must have {u.shape[1]} rows to multiply `u` {tuple(u.shape)}, "
                         f"got shape {tuple(w.shape)}")
    scales = np.atleast_1d(np.asarray(scales, dtype=np.float64))
    if not np.all(scales > 0):
        raise ValueError("`scales` must all be positive")

    def loss(w_):
        return jnp.sum(target * _bn.batch_norm(u @ w_, gamma, beta, eps=eps))

    out = {"w_norm": [], "grad_norm": [], "cosine": []}
    with enable_x64(True):
        u, w, gamma, beta, target = (jnp.asarray(np.asarray(a), jnp.float64)
                                     for a in (u, w, gamma, beta, target))
        grad = jax.jit(jax.grad(loss))
        for a in scales:
            wa = a * w
            g = grad(wa)
            out["w_norm"].append(float(jnp.linalg.norm(wa)))
            out["grad_norm"].append(float(jnp.linalg.norm(g)))
            out["cosine"].append(float(jnp.sum(g * wa) / (jnp.linalg.norm(g) * jnp.linalg.norm(wa))))
    return {k: np.array(v) for k, v in out.items()}


def eps_gain(sigmas, eps, *, m: int = 64, seed: int = 0) -> dict:
    """A feature of batch std sigma through BN with this eps: the output's std and the
    backward gain gamma / sqrt(var + eps) (gamma = 1), per sigma.

    Used in notebooks/04_bn_math.ipynb (the role of eps).
    """
    _check_eps(eps)
    sigmas = np.atleast_1d(np.asarray(sigmas, dtype=np.float64))
    if not np.all(sigmas >= 0):
        raise ValueError("`sigmas` must be >= 0")
    z = np.random.default_rng(seed).standard_normal(m)
    z = (z - z.mean()) / z.std()
    with enable_x64(True):
        x = jnp.asarray(3.0 + sigmas[None, :] * z[:, None])  # (m, len(sigmas))
        d = x.shape[1]
        y = _bn.batch_norm(x, jnp.ones(d), jnp.zeros(d), eps=eps)
        var = jnp.var(x, axis=0)
        return {"out_std": np.asarray(jnp.std(y, axis=0)),
                "gain": np.asarray(1.0 / jnp.sqrt(var + eps))}


def identity_demo(ms=(8, 32, 128), seeds=(0, 1, 2), *, d: int = 3, num_fresh: int = 20,
                  warmup: int = 200, momentum: float = 0.9, eps: float = 1e-5) -> dict:
    """Does BN with gamma = sqrt(var + eps), beta = mean fall back to the identity? (float64)

    Data: d features, x = 5 * randn + 12. gamma and beta are computed from one batch A of m
    examples; BN is then applied in training mode (each batch's own mean and biased variance) to
    A itself and to `num_fresh` fresh batches of m. Separately the running statistics are warmed
    up on `warmup` batches as `bn_helpers.apply_batch_norm` keeps them (`momentum` on the old
    value, unbiased batch variance, start mean 0, var 1), and eval mode (the running statistics,
    as `apply_batch_norm(train=False)`) is applied to the fresh examples, once with gamma, beta
    from batch A and once with gamma, beta set from the running statistics. NumPy throughout (no
    compilation per batch size). Each entry is rms(BN(x) - x) / std(x), shape
    (len(ms), len(seeds)): "train_same", "train_fresh", "eval_batch_params",
    "eval_running_params".

    Used in notebooks/04_bn_math.ipynb.
    """
    ms = [int(m) for m in ms]
    seeds = [int(s) for s in seeds]
    if not ms or min(ms) < 2:
        raise ValueError(f"`ms` must be batch sizes >= 2, got {ms!r}")
    if not seeds:
        raise ValueError("`seeds` must hold at least one seed")
    keys = ("train_same", "train_fresh", "eval_batch_params", "eval_running_params")
    out = {k: np.zeros((len(ms), len(seeds))) for k in keys}

    def dev(y, x):
        return float(np.sqrt(np.mean((y - x) ** 2)) / np.std(x))

    def train_bn(x, g, b):  # x (..., m, d): statistics over the batch axis -2
        mean, var = x.mean(-2, keepdims=True), x.var(-2, keepdims=True)
        return g * (x - mean) / np.sqrt(var + eps) + b

    for i, m in enumerate(ms):
        for j, seed in enumerate(seeds):
            rng = np.random.default_rng([seed, m])
            a = 5.0 * rng.standard_normal((m, d)) + 12.0
            g, b = np.sqrt(a.var(0) + eps), a.mean(0)          # identity_params(a)
            out["train_same"][i, j] = dev(train_bn(a, g, b), a)
            fresh = 5.0 * rng.standard_normal((num_fresh, m, d)) + 12.0
            out["train_fresh"][i, j] = dev(train_bn(fresh, g, b), fresh)
            r_mean, r_var = np.zeros(d), np.ones(d)
            for bt in 5.0 * rng.standard_normal((warmup, m, d)) + 12.0:
                r_mean = momentum * r_mean + (1 - momentum) * bt.mean(0)
                r_var = momentum * r_var + (1 - momentum) * bt.var(0, ddof=1)
            x_hat = (fresh - r_mean) / np.sqrt(r_var + eps)    # eval mode: running statistics
            out["eval_batch_params"][i, j] = dev(g * x_hat + b, fresh)
            out["eval_running_params"][i, j] = dev(np.sqrt(r_var + eps) * x_hat + r_mean, fresh)
    out["ms"] = np.array(ms)
    return out


def eps_std_deviation(z, eps: float = 1e-5) -> dict:
    """Why BN's output std is not exactly 1: for each feature of z (N, D), the measured
    1 - std(x_hat) in the dtype of z, the prediction 1 - sqrt(var / (var + eps)) from eps alone,
    and the measured value with eps = 0 (rounding alone).

    Used in notebooks/04_bn_math.ipynb.
    """
    _check_eps(eps)
    z = _bn._check_array("z", z, min_ndim=2)
    d = z.shape[-1]
    ones, zeros = jnp.ones(d, z.dtype), jnp.zeros(d, z.dtype)
    measured = 1.0 - np.asarray(jnp.std(_bn.batch_norm(z, ones, zeros, eps=eps), axis=0), np.float64)
    rounding = 1.0 - np.asarray(jnp.std(_bn.batch_norm(z, ones, zeros, eps=0.0), axis=0), np.float64)
    var = np.asarray(z, np.float64).var(axis=0)
    predicted = 1.0 - np.sqrt(var / (var + eps))
    return {"measured": measured, "predicted": predicted, "rounding": rounding, "var": var}
