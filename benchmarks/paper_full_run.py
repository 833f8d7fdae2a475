"""Time Ioffe & Szegedy's Fig. 1 run on the engine: both networks, 50,000 steps of batch 60.

    python benchmarks/paper_full_run.py                 # both networks, 1 seed each, 50,000 steps
    python benchmarks/paper_full_run.py --seeds 3       # 3 seeds per network (vmapped)
    python benchmarks/paper_full_run.py --notebook      # notebook 06's Fig. 1 cell (full mode)
    python benchmarks/paper_full_run.py --steps 5000 --split   # shorter; compile timed apart
    python benchmarks/paper_full_run.py --devices       # one network per single-threaded CPU device

Each network is a `bnh.MLP` trained by one `bnh.fit_many` call (its seeds vmapped), exactly as
notebook 06 builds them: 784-100-100-100-10 sigmoid, N(0, 0.01²) init, SGD lr 0.5, BN before
each sigmoid with momentum 0.99; test accuracy, accuracy on the first 1,000 training digits and
the percentile probe every 500 steps. --notebook adds the Xavier baseline and uses the
notebook's full-mode FIG1_STEPS (10,000). The calls are dispatched back to back (JAX runs them
asynchronously, so the second network compiles while the first trains); the time is wall
clock from the first call to the last result, compilation included. With the persistent
compilation cache (JAX_COMPILATION_CACHE_DIR) a second run is "warm". --devices makes one
single-threaded XLA CPU device per core (the flags are set before JAX starts) and places each
network on its own device, the lever benchmarks/levers.py measures.

Prints ONE line (read by `python dev.py bench`):
    paper_full_run: <what>: <wall> s including compilation (CPU <cpu> s, ...), final test acc ...
"""

from __future__ import annotations

import argparse
import os
import sys
import time

if "--devices" in sys.argv:  # XLA reads its flags when JAX starts: set them before the import
    os.environ["XLA_FLAGS"] = (f"--xla_force_host_platform_device_count={os.cpu_count()} "
                               "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import jax  # noqa: E402
import numpy as np  # noqa: E402

import bn_helpers as bnh  # noqa: E402

FULL_STEPS = 50_000
NOTEBOOK_STEPS = 10_000
EVAL_EVERY = 500


def networks(xavier: bool = False) -> dict:
    sizes = bnh.paper_experiment.SIZES
    nets = {"no BN": bnh.MLP(sizes, activation="sigmoid", init="gaussian", init_std=0.01),
            "BN": bnh.MLP(sizes, activation="sigmoid", bn="before", init="gaussian", init_std=0.01,
                          momentum=0.99)}
    if xavier:
        nets["Xavier"] = bnh.MLP(sizes, activation="sigmoid", init="xavier")
    return nets


def run(data, nets: dict, steps: int, seeds) -> dict:
    """Dispatch one fit_many per network (network i on device i mod the device count), then
    wait for all results; name -> FitResult."""
    devices = jax.devices()
    out = {}
    for i, (name, net) in enumerate(nets.items()):
        with jax.default_device(devices[i % len(devices)]):
            out[name] = bnh.fit_many(net, data, key=jax.random.PRNGKey(0), lr=0.5, seeds=seeds,
                                     num_steps=steps, eval_every=min(EVAL_EVERY, steps),
                                     train_eval=1000,
                                     probe=bnh.paper_experiment.percentile_probe(net),
                                     probe_inputs=data.x_test[:1000])
    jax.block_until_ready([(r.loss, r.test_acc, r.probe) for r in out.values()])
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="steps per network")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per network (vmapped)")
    parser.add_argument("--notebook", action="store_true",
                        help="notebook 06's Fig. 1 cell: 3 networks x 3 seeds, 10,000 steps")
    parser.add_argument("--devices", action="store_true",
                        help="one single-threaded CPU device per core, one network per device")
    parser.add_argument("--split", action="store_true",
                        help="run a second time to separate compilation from training")
    args = parser.parse_args(argv)
    data = bnh.data.load_dataset("mnist5k", binarize=True)
    seeds = list(range(3 if args.notebook else args.seeds))
    steps = args.steps or (NOTEBOOK_STEPS if args.notebook else FULL_STEPS)
    nets = networks(xavier=args.notebook)
    t0, c0 = time.perf_counter(), time.process_time()
    results = run(data, nets, steps, seeds)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    extra = ""
    if args.split:
        t1 = time.perf_counter()
        run(data, nets, steps, seeds)
        warm = time.perf_counter() - t1
        extra = f", training alone {warm:.1f} s, so compilation about {wall - warm:.1f} s"
    accs = ", ".join(f"{name} {float(np.median(r.test_acc[:, -1])):.3f}"
                     for name, r in results.items())
    cache = ("compilation cache " + ("on" if os.environ.get("JAX_COMPILATION_CACHE_DIR") else "off"))
    print(f"paper_full_run: Figure 1, {' + '.join(nets)} networks x {len(seeds)} seed(s), "
          f"{steps:,} steps: {wall:.1f} s including compilation (CPU {cpu:.1f} s{extra}; {cache}; "
          f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {len(jax.devices())} device(s); "
          f"jax {jax.__version__}); "
          f"final test acc (seed median) {accs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
