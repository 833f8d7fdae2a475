"""Time Ioffe & Szegedy's Fig. 1 run: both networks, 50,000 steps of batch 60, one computation.

    python benchmarks/paper_full_run.py                 # short run (5,000 steps), extrapolated
    python benchmarks/paper_full_run.py --full          # also the real 50,000 steps
    python benchmarks/paper_full_run.py --steps 10000   # another short length
    python benchmarks/paper_full_run.py --notebook      # notebook 06's run: 3 seeds x (no BN, BN, Xavier)

Both networks train in ONE vmapped `lax.scan` (`bnh.paper.run`: BN on/off is a
per-run flag); with --notebook the nine networks of notebook 06 (seeds 0, 1, 2 of the plain
network, the BN network and the plain network with Xavier init) do, evaluating test accuracy
and the layer-3 percentiles every 500 steps as the notebook does. Compilation is timed apart
from the run (ahead of time, `lower().compile()`). The machine may be shared: the script prints
wall time and this process's CPU time, so a busy machine shows as CPU time well below wall time x
threads.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import numpy as np

import bn_helpers as bnh

FULL_STEPS = 50_000
EVAL_EVERY = 500


def timed_run(data, steps: int, notebook: bool = False) -> dict:
    """Compile ahead of time (timed apart), then run `steps` steps of both networks once."""
    kw = dict(bn=(False, True), lr=0.5, init_std=0.01, seed=0, batch_size=60,
              eval_every=EVAL_EVERY, num_steps=steps)
    if notebook:
        seeds = (0, 1, 2)
        kw.update(bn=np.repeat([False, True, False], len(seeds)), seed=np.tile(seeds, 3),
                  init=["gaussian"] * 6 + ["xavier"] * 3)
    arrays, static = bnh.paper.run(data, _compiled="prepare", **kw)
    t0, c0 = time.perf_counter(), time.process_time()
    compiled = bnh.paper._run_jit.lower(*arrays, **static).compile()
    compile_wall, compile_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    r = bnh.paper.run(data, _compiled=compiled, **kw)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"steps": steps, "wall": wall, "cpu": cpu, "compile_wall": compile_wall,
            "compile_cpu": compile_cpu, "acc": r.test_acc[:, -1]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000, help="length of the short timed run")
    parser.add_argument("--full", action="store_true", help="also time the real 50,000 steps")
    parser.add_argument("--notebook", action="store_true",
                        help="notebook 06's nine networks (3 seeds, with Xavier) instead of two")
    args = parser.parse_args(argv)
    data = bnh.data.load_dataset("mnist5k", binarize=True)
    print(f"jax {jax.__version__}, {os.cpu_count()} CPUs, load average "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    rows = [timed_run(data, args.steps, args.notebook)]
    if args.full:
        rows.append(timed_run(data, FULL_STEPS, args.notebook))
    print(f"{'steps':>7} | {'wall s':>7} | {'CPU s':>7} | {'steps/s':>12} | "
          f"{'50K steps, s':>12} | final acc "
          f"{'(no BN x3, BN x3, Xavier x3)' if args.notebook else '(no BN, BN)'}")
    for r in rows:
        rate = r["steps"] / r["wall"]
        est = FULL_STEPS / rate
        kind = "measured" if r["steps"] == FULL_STEPS else "extrapolated"
        print(f"{r['steps']:>7} | {r['wall']:7.1f} | {r['cpu']:7.1f} | {rate:12.0f} | "
              f"{est:7.1f} ({kind}) | {np.round(r['acc'], 3).tolist()}")
    print(f"compilation: {rows[0]['compile_wall']:.1f} s wall, {rows[0]['compile_cpu']:.1f} s CPU "
          "(paid once per shape, not included above)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
