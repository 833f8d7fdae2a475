"""Where the time of one paper-MLP training step goes: the step taken apart, each part in one scan.

    python benchmarks/profile_step.py [--steps 2000] [--reps 3]

Rows, each a jitted `lax.scan` of `--steps` steps on the same pre-sliced batches (batch 60,
784-100-100-100-10): the full `bnh.fit` step (no BN, BN); the same step hand-written in plain
JAX; only the matmuls of forward + backward (what a step cannot avoid); only the elementwise
work (sigmoid, BN's statistics, softmax, the update) without the matmuls. Model-steps/s and the
GFLOP/s of the matmuls, so the table says whether the step is bound by arithmetic or by the
per-operation cost of many small kernels. Timed in interleaved rounds (median), load printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BATCH, SIZES, load, mnist, paper_mlp, rounds, table  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)

    import jax
    import jax.numpy as jnp

    import bn_helpers as bnh
    from run import step_flops

    steps = args.steps
    x_train, y_train, *_ = mnist()
    idx = bnh.train.batch_indices(jax.random.PRNGKey(0), len(x_train), BATCH, steps)
    xs, ys = jnp.asarray(x_train)[idx], jnp.asarray(y_train)[idx]
    keys = jax.random.split(jax.random.PRNGKey(1), len(SIZES) - 1)
    ws = [jax.random.normal(k, (a, b)) / a ** 0.5 for k, a, b in zip(keys, SIZES[:-1], SIZES[1:])]

    def scanned(step, carry):
        @jax.jit
        def run(carry):
            return jax.lax.scan(lambda c, b: (step(c, b), None), carry, (xs, ys))[0]

        def go():
            jax.block_until_ready(run(carry))
            return steps
        return go

    def plain_loss(ws, xb, yb, bn):
        h = xb
        for i, w in enumerate(ws):
            h = h @ w
            if i < len(ws) - 1:
                if bn:
                    h = (h - h.mean(0)) / jnp.sqrt(h.var(0) + 1e-5)
                h = jax.nn.sigmoid(h)
        return bnh.train.cross_entropy(h, yb)

    def plain_step(bn):
        def step(ws, b):
            g = jax.grad(plain_loss)(ws, *b, bn)
            return [w - 0.5 * gw for w, gw in zip(ws, g)]
        return step

    def matmuls_only(ws, b):
        # Forward chain, weight gradients and input gradients: the same matmuls a step does
        xb, _ = b
        acts, h = [], xb
        for w in ws:
            acts.append(h)
            h = h @ w
        g, new = h, []
        for i in reversed(range(len(ws))):
            new.append(ws[i] - 1e-6 * (acts[i].T @ g))
            if i:
                g = g @ ws[i].T
        return new[::-1]

    def elementwise_only(carry, b):
        # Sigmoids, BN statistics, softmax and an update on (60, 100) tiles, no matmul
        xb, yb = b
        h = carry + xb[:, :100]
        for _ in range(len(SIZES) - 2):
            h = jax.nn.sigmoid((h - h.mean(0)) / jnp.sqrt(h.var(0) + 1e-5))
        logp = jax.nn.log_softmax(h[:, :10])
        return carry - 1e-3 * (h + jnp.mean(jnp.take_along_axis(logp, yb[:, None], 1)))

    data = mnist()
    runners = {}
    for bn in (False, True):
        tag = "BN" if bn else "no BN"
        net = paper_mlp(bn)

        def fit_runner(net=net):
            def go():
                r = bnh.fit(net, data, key=jax.random.PRNGKey(0), lr=0.5, num_steps=steps,
                            eval_every=steps, train_eval=500)
                r.loss.block_until_ready()
                return steps
            return go

        runners[f"bnh.fit step ({tag})"] = fit_runner()
        runners[f"plain JAX step ({tag})"] = scanned(plain_step(bn), ws)
    runners["matmuls of a step only"] = scanned(matmuls_only, ws)
    runners["elementwise work only (BN, sigmoid, softmax, update)"] = scanned(
        elementwise_only, jnp.zeros((BATCH, 100)))
    res = rounds(runners, args.reps)
    flops = step_flops()
    rows = [(name, f"{r['per_s']:,.0f}", f"{1e3 / r['per_s']:.3f}",
             f"{r['per_s'] * flops / 1e9:.1f}" if "elementwise" not in name else "")
            for name, r in res.items()]
    print(f"One training step of the paper MLP taken apart ({steps} steps per timed scan; {load()})\n")
    print(table(["part of a step", "steps/s", "ms per step", "matmul GFLOP/s"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
