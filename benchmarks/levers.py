"""Speed levers for the engine, each variant in a fresh process (XLA_FLAGS are read when jax starts).

    python benchmarks/levers.py                   # every lever, one table (a few minutes)
    python benchmarks/levers.py --steps 1000 --configs 4
    python benchmarks/levers.py worker plain ...  # one worker (what the table runs)

Workload: the paper MLP (784-100-100-100-10, sigmoid, batch 60) as `bnh.fit_many`
over K learning rates, for both networks (no BN, BN before each sigmoid).
Levers: (1) the K configs split over two single-threaded CPU devices
(`--xla_force_host_platform_device_count=2`), by asynchronous dispatch of one
`fit_many` per device or by one `shard_map`ped program; (2) the two networks on
the two devices; (3) two processes, each single-threaded, each training one
network; (4) both networks as two independent computations in ONE jitted program;
(5) JAX's persistent compilation cache: compile time cold and warm.
Every number is a median of 3 timed runs after a warm-up; ratios are against the
plain vmapped `fit_many` (default threads, one device) measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (SINGLE_THREAD_FLAGS, TWO_DEVICES_FLAGS, emit, load, mnist,  # noqa: E402
                    paper_mlp, rounds, table, worker)

LABEL = {False: "no BN", True: "BN"}


# ---------------------------------------------------------------------------------------------
# The candidates (what train.py would get if one wins)

def fit_many_split(model, data, *, lr, devices=None, **kw):
    """`fit_many` with the K configs (`lr`, 1-D) split over the CPU devices: one `fit_many` per
    device, dispatched asynchronously so the devices run at the same time; same numbers."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import bn_helpers as bnh

    devices = devices or jax.devices()
    parts = np.array_split(np.asarray(lr, np.float32), len(devices))
    outs = []
    for dev, part in zip(devices, parts):
        with jax.default_device(dev):
            outs.append(bnh.fit_many(model, data, lr=part, **kw))
    eval_steps = outs[0].eval_steps
    first = jax.devices()[0]
    merged = jax.tree.map(lambda *a: jnp.concatenate([jax.device_put(x, first) for x in a]),
                          *[o._replace(eval_steps=None) for o in outs])
    return merged._replace(eval_steps=eval_steps)


def fit_many_sharded(model, data, *, lr, key, **kw):
    """`fit_many` as ONE program over a Mesh of the CPU devices (`shard_map`, K axis split)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, PartitionSpec as P

    import bn_helpers as bnh

    shard_map = getattr(jax, "shard_map", None)
    if shard_map is None:  # jax < 0.7
        from jax.experimental.shard_map import shard_map
    mesh = Mesh(np.array(jax.devices()), ("k",))
    fn = _SHARDED.get((model, mesh, tuple(sorted(kw.items()))))
    if fn is None:
        def local(lr, data, key):
            r = bnh.fit_many(model, data, key=key, lr=lr, **kw)
            return r._replace(eval_steps=None)

        spec = {"mesh": mesh, "in_specs": (P("k"), P(), P()), "out_specs": P("k")}
        try:  # the scan carry starts replicated and becomes per-device: skip the varying check
            mapped = shard_map(local, check_vma=False, **spec)
        except TypeError:  # jax < 0.7
            mapped = shard_map(local, check_rep=False, **spec)
        fn = jax.jit(mapped)
        _SHARDED[(model, mesh, tuple(sorted(kw.items())))] = fn
    out = fn(jnp.asarray(lr, jnp.float32), tuple(jnp.asarray(a) for a in data), key)
    steps = kw["num_steps"]
    every = min(kw.get("eval_every", 500), steps)
    return out._replace(eval_steps=np.arange(0, steps + 1, every))


_SHARDED: dict = {}


# ---------------------------------------------------------------------------------------------
# Workers (each runs in its own process)

def _lrs(k):
    import numpy as np

    return np.linspace(0.1, 1.0, k).astype(np.float32)


def _fit_many(bn, data, steps, k, **extra):
    import jax

    import bn_helpers as bnh

    net = paper_mlp(bn)
    seed = iter(range(10**6))

    def go():
        r = bnh.fit_many(net, data, key=jax.random.PRNGKey(next(seed)), lr=_lrs(k), num_steps=steps,
                         eval_every=steps, **extra)
        r.loss.block_until_ready()
        return k * steps

    return go


def worker_plain(steps, k, reps):
    """Default flags (one device, XLA's threads): fit_many per network, both in sequence, both in
    one jitted program."""
    import jax

    import bn_helpers as bnh

    data = mnist()
    nets = [paper_mlp(False), paper_mlp(True)]

    def both(key, lr, data):
        return [bnh.fit_many(n, data, key=key, lr=lr, num_steps=steps, eval_every=steps).loss
                for n in nets]

    both_jit = jax.jit(both)
    seed = iter(range(10**6))

    def one_program():
        jax.block_until_ready(both_jit(jax.random.PRNGKey(next(seed)), _lrs(k), data))
        return 2 * k * steps

    a, b = _fit_many(False, data, steps, k), _fit_many(True, data, steps, k)

    def sequence():
        return a() + b()

    return rounds({"no BN": a, "BN": b, "both, in sequence": sequence,
                   "both, one jitted program": one_program}, reps)


def _variant(fn, net, data, steps, k):
    import jax

    seed = iter(range(10**6))

    def go():
        r = fn(net, data, key=jax.random.PRNGKey(next(seed)), lr=_lrs(k), num_steps=steps,
               eval_every=steps)
        r.loss.block_until_ready()
        return k * steps

    return go


def worker_devices(steps, k, reps):
    """Two single-threaded CPU devices: K split per network (async / shard_map), nets one per device."""
    import jax

    import bn_helpers as bnh

    assert len(jax.devices()) == 2, jax.devices()
    data = mnist()
    runners = {}
    for bn in (False, True):
        runners[f"{LABEL[bn]}, one device"] = _fit_many(bn, data, steps, k)
        for name, fn in (("split, async", fit_many_split), ("shard_map", fit_many_sharded)):
            runners[f"{LABEL[bn]}, {name}"] = _variant(fn, paper_mlp(bn), data, steps, k)
    seed = iter(range(10**6))

    def nets_on_devices():
        key = jax.random.PRNGKey(next(seed))
        outs = []
        for dev, bn in zip(jax.devices(), (False, True)):
            with jax.default_device(dev):
                outs.append(bnh.fit_many(paper_mlp(bn), data, key=key, lr=_lrs(k), num_steps=steps,
                                         eval_every=steps).loss)
        jax.block_until_ready(outs)
        return 2 * k * steps

    a, b = runners["no BN, one device"], runners["BN, one device"]
    runners["both, in sequence, one device"] = lambda: a() + b()
    runners["both, one net per device"] = nets_on_devices
    return rounds(runners, reps)


def worker_single(steps, k, reps, bn, barrier):
    """One network, single-threaded XLA; with `barrier` (a folder), wait for the partner process
    before the timed runs and report the wall-clock span of the timed part."""
    data = mnist()
    go = _fit_many(bn, data, steps, k)
    go()  # compile
    if barrier:
        Path(barrier, f"ready-{int(bn)}").touch()
        while len(list(Path(barrier).glob("ready-*"))) < 2:
            time.sleep(0.01)
    start = time.time()
    walls = []
    for _ in range(reps):
        t0 = time.perf_counter()
        go()
        walls.append(time.perf_counter() - t0)
    return {"start": start, "end": time.time(), "model_steps": reps * k * steps,
            "per_s": k * steps / statistics.median(walls)}


def worker_cache(steps, k):
    """First fit_many call (compile + run) and a second one (run) in this process; the persistent
    cache directory comes from JAX_COMPILATION_CACHE_DIR."""
    import jax

    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    data = mnist()
    out = {}
    for bn in (False, True):
        go = _fit_many(bn, data, steps, k)
        t0 = time.perf_counter()
        go()
        first = time.perf_counter() - t0
        runs = []
        for _ in range(2):
            t0 = time.perf_counter()
            go()
            runs.append(time.perf_counter() - t0)
        out[LABEL[bn]] = {"first_s": first, "run_s": min(runs), "compile_s": first - min(runs)}
    return out


# ---------------------------------------------------------------------------------------------
# The table

def two_processes(steps, k, reps):
    """Two single-threaded processes at once, one network each; combined model-steps/s."""
    with tempfile.TemporaryDirectory() as barrier:
        res = {}

        def run(bn):
            res[bn] = worker("levers.py", ["worker", "single", "--steps", steps, "--configs", k,
                                           "--reps", reps, "--bn", int(bn), "--barrier", barrier],
                             xla_flags=SINGLE_THREAD_FLAGS)

        threads = [threading.Thread(target=run, args=(bn,)) for bn in (False, True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if len(res) < 2:
        raise RuntimeError("a two-process worker failed")
    span = max(r["end"] for r in res.values()) - min(r["start"] for r in res.values())
    return {"per_s": sum(r["model_steps"] for r in res.values()) / span,
            "each": {LABEL[bn]: r["per_s"] for bn, r in res.items()}}


def compile_cache(steps, k):
    with tempfile.TemporaryDirectory() as cache:
        env = {"JAX_COMPILATION_CACHE_DIR": cache}
        cold = worker("levers.py", ["worker", "cache", "--steps", steps, "--configs", k], env=env)
        warm = worker("levers.py", ["worker", "cache", "--steps", steps, "--configs", k], env=env)
    return cold, warm


def measure(steps: int, k: int, reps: int = 3) -> dict:
    args = ["--steps", steps, "--configs", k, "--reps", reps]
    out = {"load_before": load()}
    out["plain"] = worker("levers.py", ["worker", "plain", *args])
    log("plain", out["plain"])
    out["devices"] = worker("levers.py", ["worker", "devices", *args], xla_flags=TWO_DEVICES_FLAGS)
    log("devices", out["devices"])
    out["two_processes"] = two_processes(steps, k, reps)
    log("two processes", out["two_processes"])
    out["cache"] = compile_cache(min(steps, 500), k)
    log("cache", out["cache"])
    out["load_after"] = load()
    return out


def log(what, res):
    """Progress on stderr: the raw numbers of one finished worker."""
    print(f"[levers] {what}: {json.dumps(res, default=str)[:1500]} ({load()})", file=sys.stderr,
          flush=True)


def lever_table(m: dict, k: int) -> str:
    p, d = m["plain"], m["devices"]
    rows = []

    def row(name, per_s, ref, note=""):
        rows.append((name, f"{per_s:,.0f}", f"{per_s / ref:.2f}x", note))

    for bn in ("no BN", "BN"):
        ref = p[bn]["per_s"]
        row(f"{bn}: fit_many vmap {k}, default threads (reference)", ref, ref)
        row(f"{bn}: same, 1 single-threaded device", d[f"{bn}, one device"]["per_s"], ref)
        row(f"{bn}: K split over 2 single-threaded devices, async", d[f"{bn}, split, async"]["per_s"],
            ref)
        row(f"{bn}: K split over 2 devices, one shard_map program", d[f"{bn}, shard_map"]["per_s"], ref)
    ref = p["both, in sequence"]["per_s"]
    row("both nets: two fit_many calls in sequence (reference)", ref, ref)
    row("both nets: two computations in one jitted program", p["both, one jitted program"]["per_s"], ref)
    row("both nets: in sequence, 1 single-threaded device",
        d["both, in sequence, one device"]["per_s"], ref)
    row("both nets: one net per single-threaded device", d["both, one net per device"]["per_s"], ref)
    tp = m["two_processes"]
    row("both nets: two single-threaded processes, one net each", tp["per_s"], ref,
        "each: " + ", ".join(f"{n} {v:,.0f}" for n, v in tp["each"].items()))
    text = table([f"lever (paper MLP, K={k} learning rates)", "model-steps/s", "vs reference", ""],
                 rows, "lrrl")
    cold, warm = m["cache"]
    crow = [(bn, f"{cold[bn]['compile_s']:.2f}", f"{warm[bn]['compile_s']:.2f}",
             f"{cold[bn]['compile_s'] / max(warm[bn]['compile_s'], 1e-3):.1f}x") for bn in cold]
    text += "\n\n" + table(["persistent compilation cache, first fit_many call minus a later one",
                            "cold s", "warm s", "cold / warm"], crow)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", default="table", choices=["table", "worker"])
    parser.add_argument("name", nargs="?", choices=["plain", "devices", "single", "cache"])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--configs", type=int, default=8)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--bn", type=int, default=0)
    parser.add_argument("--barrier")
    args = parser.parse_args(argv)
    if args.mode == "worker":
        if args.name == "single":
            emit(worker_single(args.steps, args.configs, args.reps, bool(args.bn), args.barrier))
        elif args.name == "cache":
            emit(worker_cache(args.steps, args.configs))
        else:
            fn = {"plain": worker_plain, "devices": worker_devices}[args.name]
            emit(fn(args.steps, args.configs, args.reps))
        return 0
    m = measure(args.steps, args.configs, args.reps)
    print(f"{m['load_before']} (before), {m['load_after']} (after)\n")
    print(lever_table(m, args.configs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
