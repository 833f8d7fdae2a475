"""The small-CNN rows of the benchmark: engine, PyTorch eager (1 and 2 threads), Keras 3 on JAX.

Network (all implementations): 28x28x1 input (Fashion-MNIST), two stages of
3x3 conv (16, then 32 channels, "same" padding, no bias) + BN + ReLU + 2x2 max
pool, global average pool, dense 10; plain SGD, batch 60, cross-entropy.

    python benchmarks/cnn.py                    # the CNN table alone
    python benchmarks/cnn.py keras --steps 160  # worker: Keras 3 `model.fit` (KERAS_BACKEND=jax)

The engine row is `bn_helpers.cnn.CNN` through `bnh.fit` / `bnh.fit_many` once
bn_helpers/cnn.py is committed; before that (or with `--cnn reference`) it is
`RefCNN` below, the same network in plain JAX on the tested BN core, trained
by one jitted `lax.scan` over pre-sliced batches.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, emit, rounds, table, worker  # noqa: E402

CHANNELS = (16, 32)
BATCH = 60


def fashion(n_train: int | None = None):
    """Fashion-MNIST images NHWC (N, 28, 28, 1), float32 in [0, 1], labels int32."""
    import bn_helpers as bnh

    ds = bnh.data.load_dataset("fashion10k", flatten=False)
    n = n_train or len(ds.x_train)
    return ds.x_train[:n], ds.y_train[:n], ds.x_test, ds.y_test


def engine_committed() -> bool:
    """True when bn_helpers/cnn.py is in the git history (then the engine's CNN is benchmarked)."""
    p = subprocess.run(["git", "log", "--oneline", "-1", "--", "bn_helpers/cnn.py"], cwd=ROOT,
                       capture_output=True, text=True)
    return bool(p.stdout.strip())


@dataclass(frozen=True)
class RefCNN:
    """The benchmark's CNN in plain JAX (NHWC), BN through bn_helpers.batchnorm; the model protocol."""

    channels: tuple = CHANNELS
    input_shape: tuple = (28, 28, 1)
    needs_batch: bool = True

    def init_params(self, key, scale=1.0):
        import jax
        import jax.numpy as jnp

        import bn_helpers as bnh

        params, state, c_in = [], [], self.input_shape[-1]
        keys = jax.random.split(key, len(self.channels) + 1)
        for k, c in zip(keys, self.channels):
            w = scale * jax.random.normal(k, (3, 3, c_in, c)) * (2.0 / (9 * c_in)) ** 0.5
            p, s = bnh.batchnorm.init_batch_norm(c)
            params.append({"W": w, **p})
            state.append(s)
            c_in = c
        params.append({"W": scale * jax.random.normal(keys[-1], (c_in, 10)) * (1.0 / c_in) ** 0.5,
                       "b": jnp.zeros(10)})
        state.append({})
        return params, state

    def apply(self, params, state, x, *, train: bool, key=None):
        import jax

        import bn_helpers as bnh

        h, new_state = x, []
        for p, s in zip(params[:-1], state[:-1]):
            z = jax.lax.conv_general_dilated(h, p["W"], (1, 1), "SAME",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
            z, s = bnh.batchnorm.apply_batch_norm({"gamma": p["gamma"], "beta": p["beta"]}, s, z,
                                                  train=train)
            new_state.append(s)
            z = jax.nn.relu(z)
            n, hh, ww, c = z.shape
            h = z.reshape(n, hh // 2, 2, ww // 2, 2, c).max(axis=(2, 4))
        logits = h.mean(axis=(1, 2)) @ params[-1]["W"] + params[-1]["b"]
        return logits, new_state + [state[-1]]


def reference_runner(data, idx, configs: int = 1, mode: str = "scan", unroll: int = 10):
    """A callable: SGD over the batches `idx` with RefCNN (vmapped over `configs` learning rates
    when > 1); returns model-steps. Benchmark-only stand-in for the engine.

    mode "scan": the whole run in one jitted `lax.scan` (what `bnh.fit` does);
    "step": a jitted step called from a Python loop;
    "unroll": `unroll` steps unrolled in one jitted call, called from a Python loop.
    (XLA:CPU runs convolutions inside a while loop much slower, jax-ml/jax#12868.)
    """
    import jax
    import jax.numpy as jnp

    import bn_helpers as bnh

    model = RefCNN()
    x, y = jnp.asarray(data[0]), jnp.asarray(data[1])
    idx = jnp.asarray(idx)
    lrs = jnp.linspace(0.05, 0.2, configs) if configs > 1 else jnp.float32(0.1)

    def loss(params, state, xb, yb):
        logits, state = model.apply(params, state, xb, train=True)
        return bnh.train.cross_entropy(logits, yb), state

    def step(lr, carry, batch):
        params, state = carry
        (value, state), g = jax.value_and_grad(loss, has_aux=True)(params, state, *batch)
        return (jax.tree.map(lambda p, d: p - lr * d, params, g), state), value

    def steps(lr, carry, xb_all, yb_all, unroll=1):
        return jax.lax.scan(lambda c, b: step(lr, c, b), carry, (xb_all, yb_all), unroll=unroll)

    init = model.init_params
    vm = (lambda f, axes: jax.vmap(f, in_axes=axes)) if configs > 1 else (lambda f, axes: f)
    init_all = jax.jit(vm(lambda lr, key: init(key), (0, None)))
    key = jax.random.PRNGKey(0)
    n = idx.shape[0]

    if mode == "scan":
        run = jax.jit(vm(lambda lr, carry, i, x, y: steps(lr, carry, x[i], y[i])[1],
                         (0, 0, None, None, None)))

        def go():
            run(lrs, init_all(lrs, key), idx, x, y).block_until_ready()
            return configs * n
    else:
        u = 1 if mode == "step" else unroll
        block = jax.jit(vm(lambda lr, carry, i, x, y: steps(lr, carry, x[i], y[i], unroll=True),
                           (0, 0, None, None, None)))
        blocks = idx[: n // u * u].reshape(n // u, u, -1)

        def go():
            carry = init_all(lrs, key)
            for b in blocks:
                carry, losses = block(lrs, carry, b, x, y)
            losses.block_until_ready()
            return configs * blocks.shape[0] * u

    return go


def engine_runner(data, steps: int, configs: int = 1):
    """A callable: `bnh.fit` (configs=1) or `bnh.fit_many` of bn_helpers.cnn.CNN; returns model-steps."""
    import jax
    import jax.numpy as jnp

    import bn_helpers as bnh
    from bn_helpers.cnn import CNN

    net = CNN(channels=CHANNELS, norm="batch", activation="relu", pool="max")
    seed = iter(range(10**6))

    def go():
        key = jax.random.PRNGKey(next(seed))
        if configs == 1:
            r = bnh.fit(net, data, key=key, lr=0.1, num_steps=steps, eval_every=steps,
                        train_eval=BATCH)
        else:
            r = bnh.fit_many(net, data, key=key, lr=jnp.linspace(0.05, 0.2, configs),
                             num_steps=steps, eval_every=steps, train_eval=BATCH)
        r.loss.block_until_ready()
        return configs * steps

    return go


def torch_runner(data, idx, threads: int):
    """A callable: the same CNN in PyTorch eager (NCHW), `threads` intra-op threads."""
    import numpy as np
    import torch

    x = torch.from_numpy(np.ascontiguousarray(np.asarray(data[0]).transpose(0, 3, 1, 2)))
    y = torch.from_numpy(np.asarray(data[1]).astype(np.int64))
    batches = [(x[b], y[b]) for b in map(torch.from_numpy, np.asarray(idx).astype(np.int64))]

    def go():
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        layers, c_in = [], 1
        for c in CHANNELS:
            layers += [torch.nn.Conv2d(c_in, c, 3, padding=1, bias=False), torch.nn.BatchNorm2d(c),
                       torch.nn.ReLU(), torch.nn.MaxPool2d(2)]
            c_in = c
        net = torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                  torch.nn.Linear(c_in, 10))
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        loss_fn = torch.nn.CrossEntropyLoss()
        for xb, yb in batches:
            opt.zero_grad(set_to_none=True)
            loss_fn(net(xb), yb).backward()
            opt.step()
        return len(batches)

    return go


def keras_worker(steps: int, reps: int) -> dict:
    """Keras 3 `model.fit` on the JAX backend: one warm-up epoch (compile), then `reps` timed
    epochs of `steps` steps; model-steps/s from the median epoch."""
    os.environ["KERAS_BACKEND"] = "jax"
    import keras
    import numpy as np

    x, y = fashion(steps * BATCH)[:2]
    keras.utils.set_random_seed(0)
    layers = [keras.Input((28, 28, 1))]
    for c in CHANNELS:
        layers += [keras.layers.Conv2D(c, 3, padding="same", use_bias=False),
                   keras.layers.BatchNormalization(), keras.layers.ReLU(), keras.layers.MaxPooling2D(2)]
    model = keras.Sequential(layers + [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.t0)

    clock = Clock()
    model.fit(x, y, batch_size=BATCH, epochs=reps + 1, shuffle=True, verbose=0, callbacks=[clock])
    return {"first_s": clock.times[0], "per_s": steps / float(np.median(clock.times[1:])),
            "keras": keras.__version__}


def cnn_rows(*, steps: int, reps: int, configs: int, engine: str = "auto") -> tuple[list, str]:
    """Measure the CNN table in one run; returns (rows, note on the engine row's source)."""
    import jax

    import bn_helpers as bnh

    data = fashion()
    idx = bnh.train.batch_indices(jax.random.PRNGKey(0), len(data[0]), BATCH, steps)
    use_engine = engine == "engine" or (engine == "auto" and engine_committed())
    if use_engine:
        src = "bn_helpers.cnn.CNN through bnh.fit / bnh.fit_many"
        runners = {"engine, bnh.fit (1 model)": engine_runner(data, steps),
                   f"engine, bnh.fit_many ({configs} configs in one program)":
                       engine_runner(data, steps, configs)}
    else:
        src = ("benchmarks/cnn.py RefCNN (plain JAX + bn_helpers BN core, jitted scan): "
               "bn_helpers/cnn.py not committed yet")
        runners = {"JAX reference, 1 model, one lax.scan": reference_runner(data, idx),
                   "JAX reference, 1 model, jitted step in a Python loop":
                       reference_runner(data, idx, mode="step"),
                   "JAX reference, 1 model, 10 unrolled steps per jitted call":
                       reference_runner(data, idx, mode="unroll"),
                   f"JAX reference, vmap {configs}, 10 unrolled steps per call":
                       reference_runner(data, idx, configs, mode="unroll")}
    try:
        import torch  # noqa: F401

        runners["PyTorch eager, 1 thread"] = torch_runner(data, idx, 1)
        runners["PyTorch eager, 2 threads"] = torch_runner(data, idx, 2)
    except ImportError:
        pass
    res = rounds(runners, reps)
    try:
        k = worker("cnn.py", ["keras", "--steps", steps, "--reps", reps])
        res[f"Keras {k['keras']} model.fit, JAX backend"] = k
    except Exception as err:  # keras missing or broken: say so in the table
        res[f"Keras model.fit, JAX backend (failed: {str(err).splitlines()[0][:60]})"] = None
    return res, src


def cnn_table(res: dict) -> str:
    torch_best = max((r["per_s"] for n, r in res.items() if r and n.startswith("PyTorch")), default=None)
    rows = []
    for name, r in res.items():
        if r is None:
            rows.append((name, "n/a", "", ""))
            continue
        ratio = f"{r['per_s'] / torch_best:.2f}x" if torch_best else ""
        rows.append((name, f"{r['per_s']:,.0f}", ratio, f"{r['first_s']:.1f}"))
    return table(["CNN implementation", "model-steps/s", "vs best PyTorch", "first call s"], rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", default="table", choices=["table", "keras"])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--configs", type=int, default=4)
    parser.add_argument("--cnn", default="auto", choices=["auto", "engine", "reference"])
    args = parser.parse_args(argv)
    if args.what == "keras":
        emit(keras_worker(args.steps, args.reps))
        return 0
    res, src = cnn_rows(steps=args.steps, reps=args.reps, configs=args.configs, engine=args.cnn)
    print(f"engine row: {src}\n")
    print(cnn_table(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
