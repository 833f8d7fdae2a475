"""Benchmark table: training throughput of the engine against NumPy and PyTorch, and slider update times.

    python dev.py bench                 # everything (a few minutes)
    python dev.py bench --skip-sliders  # engine table only
    python dev.py bench --steps 3000    # steps per timed training run

Everything in one table is measured in one run of this script, on this
machine: compare ratios, not absolute numbers from another day.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bn_helpers as bnh  # noqa: E402
from baselines import SIZES, numpy_steps_per_second, torch_steps_per_second  # noqa: E402

BATCH = 60


def step_flops(batch: int = BATCH) -> float:
    """Matmul FLOPs of one SGD step: forward, weight gradients, input gradients (not layer 1's)."""
    fwd = sum(2 * batch * a * b for a, b in zip(SIZES[:-1], SIZES[1:]))
    return 3 * fwd - 2 * batch * SIZES[0] * SIZES[1]


def matmul_peak(n: int = 2048, reps: int = 10) -> float:
    """float32 n x n matmul GFLOP/s with jax (median of reps)."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n))
    f = jax.jit(lambda u, v: u @ v)
    f(a, a).block_until_ready()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f(a, a).block_until_ready()
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def engine(data, *, bn: bool, steps: int, configs: int = 1, reps: int = 3) -> float:
    """Model-steps per second of bnh.fit (configs=1) or bnh.fit_many over `configs` learning rates."""
    net = bnh.MLP(SIZES, activation="sigmoid", bn="before" if bn else None, init="gaussian",
                  init_std=0.01)

    def run(seed):
        key = jax.random.PRNGKey(seed)
        if configs == 1:
            r = bnh.fit(net, data, key=key, lr=0.5, num_steps=steps, eval_every=steps)
        else:
            r = bnh.fit_many(net, data, key=key, lr=jnp.linspace(0.1, 1.0, configs),
                             num_steps=steps, eval_every=steps)
        r.loss.block_until_ready()

    run(0)  # compile
    times = []
    for seed in range(1, reps + 1):
        t0 = time.perf_counter()
        run(seed)
        times.append(time.perf_counter() - t0)
    return configs * steps / statistics.median(times)


def slider_times(notebooks, n: int = 20) -> list[dict]:
    """Execute each notebook (FAST) and sweep every LiveFigure control in its kernel."""
    import nbformat
    from nbclient import NotebookClient

    rows = []
    code = ("import json, bn_helpers as bnh\n"
            "print('SWEEP' + json.dumps([bnh.widgets.sweep(l, %d) for l in "
            "bnh.widgets.instances()]))" % n)
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell(code))
        os.environ["BN_FAST"] = "1"
        NotebookClient(nb, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        text = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
        sweeps = json.loads(text.split("SWEEP", 1)[1])
        for i, sweep in enumerate(sweeps):
            for control, t in sweep.items():
                if not t["compute+draw"]:
                    continue
                rows.append({"notebook": path.stem, "figure": i, "control": control,
                             "n": len(t["compute+draw"]),
                             "p50": statistics.median(t["compute+draw"]),
                             "p90": float(np.percentile(t["compute+draw"], 90)),
                             "encode": statistics.median(t["encode"])})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--baseline-steps", type=int, default=600)
    parser.add_argument("--skip-sliders", action="store_true")
    parser.add_argument("--notebooks", nargs="*")
    args = parser.parse_args(argv)

    ds = bnh.data.load_dataset("mnist5k")
    data = (ds.x_train, ds.y_train, ds.x_test, ds.y_test)
    idx = np.asarray(bnh.train.batch_indices(jax.random.PRNGKey(0), len(ds.x_train), BATCH,
                                             args.baseline_steps))
    flops = step_flops()
    peak = matmul_peak()
    rows = []
    for bn in (False, True):
        label = "with BN" if bn else "no BN"
        rows.append((f"bn_helpers engine, 1 model ({label})", engine(data, bn=bn, steps=args.steps)))
        rows.append((f"bn_helpers engine, vmap 4 models ({label})",
                     engine(data, bn=bn, steps=args.steps, configs=4)))
        rows.append((f"NumPy, hand-written backward ({label})",
                     numpy_steps_per_second(ds.x_train, ds.y_train, idx, bn=bn)))
        rows.append((f"PyTorch eager, CPU ({label})",
                     torch_steps_per_second(ds.x_train, ds.y_train, idx, bn=bn)))

    print(f"\nIoffe & Szegedy MLP {'-'.join(map(str, SIZES))}, sigmoid, batch {BATCH}; "
          f"{flops / 1e6:.1f} MFLOP of matmuls per step")
    print(f"matmul peak (jax, float32 2048x2048, {os.cpu_count()} cores): {peak:.0f} GFLOP/s\n")
    print(f"| {'implementation':46s} | model-steps/s | GFLOP/s | % of peak |")
    print(f"|{'-' * 48}|--------------:|--------:|----------:|")
    for name, sps in rows:
        if sps is None:
            print(f"| {name:46s} | {'n/a (torch not installed)':>13s} |         |           |")
            continue
        gf = sps * flops / 1e9
        print(f"| {name:46s} | {sps:13,.0f} | {gf:7.1f} | {100 * gf / peak:8.0f}% |")
    by_name = dict(rows)
    for label in ("no BN", "with BN"):
        t = by_name[f"PyTorch eager, CPU ({label})"]
        if t:
            one = by_name[f"bn_helpers engine, 1 model ({label})"] / t
            four = by_name[f"bn_helpers engine, vmap 4 models ({label})"] / t
            print(f"speed-up over PyTorch eager ({label}): {one:.1f}x (1 model), "
                  f"{four:.1f}x (vmap 4, per model-step)")

    if not args.skip_sliders:
        paths = ([Path(p) for p in args.notebooks] if args.notebooks
                 else sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
        srows = slider_times(paths)
        print("\nSlider updates (FAST mode, 20 values per control; compute + draw, then PNG encode)\n")
        print(f"| {'notebook':24s} | fig | {'control':22s} | p50 ms | p90 ms | encode p50 ms |")
        print(f"|{'-' * 26}|----:|{'-' * 24}|-------:|-------:|--------------:|")
        for r in srows:
            print(f"| {r['notebook']:24s} | {r['figure']:3d} | {r['control']:22s} | "
                  f"{r['p50']:6.1f} | {r['p90']:6.1f} | {r['encode']:13.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
