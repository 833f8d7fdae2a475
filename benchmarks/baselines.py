"""Baselines for the engine benchmark: the Ioffe & Szegedy MLP in plain NumPy and in PyTorch eager.

Same network as the engine's (784-100-100-100-10, sigmoid, BN before each
sigmoid or not, plain SGD, batch 60), same pre-shuffled batches. The
`*_runner` functions return a callable that trains over the batches once and
returns the number of steps, for `common.rounds`.
"""

from __future__ import annotations

import time

import numpy as np

SIZES = (784, 100, 100, 100, 10)


def numpy_steps_per_second(x, y, idx, *, bn: bool, lr: float = 0.5, eps: float = 1e-5) -> float:
    """Train with a hand-written NumPy backward pass over the given batches; return steps/s."""
    t0 = time.perf_counter()
    n = numpy_runner(x, y, idx, bn=bn, lr=lr, eps=eps)()
    return n / (time.perf_counter() - t0)


def numpy_runner(x, y, idx, *, bn: bool, lr: float = 0.5, eps: float = 1e-5):
    """A callable: one training run over the batches `idx` with NumPy; returns the step count."""
    x, y, idx = np.asarray(x), np.asarray(y), np.asarray(idx)
    return lambda: _numpy_train(x, y, idx, bn, lr, eps)


def _numpy_train(x, y, idx, bn, lr, eps):
    rng = np.random.default_rng(0)
    Ws = [rng.standard_normal((a, b)).astype(np.float32) * 0.01 for a, b in zip(SIZES[:-1], SIZES[1:])]
    bs = [np.zeros(b, np.float32) for b in SIZES[1:]]
    gammas = [np.ones(b, np.float32) for b in SIZES[1:-1]]
    betas = [np.zeros(b, np.float32) for b in SIZES[1:-1]]
    for batch in idx:
        h, yb = x[batch], y[batch]
        cache = []
        for i in range(3):
            z = h @ Ws[i]
            if bn:
                mu, var = z.mean(0), z.var(0)
                inv = 1.0 / np.sqrt(var + eps)
                zh = (z - mu) * inv
                z2 = gammas[i] * zh + betas[i]
            else:
                z2 = z + bs[i]
                zh = inv = None
            a = 1.0 / (1.0 + np.exp(-z2))
            cache.append((h, zh, inv, a))
            h = a
        logits = h @ Ws[3] + bs[3]
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        p[np.arange(len(yb)), yb] -= 1.0
        g = p / len(yb)
        gW, gb = h.T @ g, g.sum(0)
        g = g @ Ws[3].T
        Ws[3] -= lr * gW
        bs[3] -= lr * gb
        for i in (2, 1, 0):
            h_in, zh, inv, a = cache[i]
            g = g * a * (1 - a)
            if bn:
                dgamma, dbeta = (g * zh).sum(0), g.sum(0)
                g = gammas[i] * inv * (g - g.mean(0) - zh * (g * zh).mean(0))
                gammas[i] -= lr * dgamma
                betas[i] -= lr * dbeta
            else:
                bs[i] -= lr * g.sum(0)
            gW = h_in.T @ g
            if i:
                g = g @ Ws[i].T
            Ws[i] -= lr * gW
    return len(idx)


def torch_steps_per_second(x, y, idx, *, bn: bool, lr: float = 0.5) -> float | None:
    """The same training in PyTorch eager on the CPU; None when torch is not installed."""
    run = torch_runner(x, y, idx, bn=bn, lr=lr)
    if run is None:
        return None
    t0 = time.perf_counter()
    n = run()
    return n / (time.perf_counter() - t0)


def torch_runner(x, y, idx, *, bn: bool, lr: float = 0.5, threads: int | None = None):
    """A callable: one PyTorch eager training run over `idx` (fresh weights, `threads` intra-op
    threads, set at each call); returns the step count. None when torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    xt, yt = torch.from_numpy(np.asarray(x)), torch.from_numpy(np.asarray(y).astype(np.int64))
    batches = [(xt[b], yt[b]) for b in map(torch.from_numpy, np.asarray(idx).astype(np.int64))]

    def run():
        if threads:
            torch.set_num_threads(threads)
        return _torch_train(torch, batches, bn, lr)

    return run


def _torch_train(torch, batches, bn, lr):
    torch.manual_seed(0)
    layers = []
    for a, b in zip(SIZES[:-2], SIZES[1:-1]):
        layers += [torch.nn.Linear(a, b, bias=not bn)]
        if bn:
            layers += [torch.nn.BatchNorm1d(b)]
        layers += [torch.nn.Sigmoid()]
    layers += [torch.nn.Linear(SIZES[-2], SIZES[-1])]
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    for xb, yb in batches:
        opt.zero_grad(set_to_none=True)
        loss_fn(net(xb), yb).backward()
        opt.step()
    return len(batches)
