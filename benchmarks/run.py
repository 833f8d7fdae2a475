"""Benchmark tables, measured in one run: the engine against PyTorch eager, NumPy and Keras.

    python dev.py bench                  # MLP + CNN tables, Figure 1 run (50,000 steps), levers
    python dev.py bench --quick          # MLP + CNN tables, Figure 1 over 5,000 steps (about 3 min)
    python dev.py bench --collection     # also every notebook in full mode (BN_FAST=0, minutes)
    python dev.py bench --sliders        # also every slider's update time (benchmarks/sliders.py)
    python dev.py bench --write          # also write the tables to benchmarks/RESULTS.md

(a) The paper MLP (784-100-100-100-10, sigmoid, batch 60): `bnh.fit` and
`bnh.fit_many` (K learning rates vmapped) in model-steps/s, with and without
BN, against PyTorch eager at 1 and 2 threads and a hand-written NumPy
backward, all on the same pre-shuffled batches. (b) A small CNN (see
benchmarks/cnn.py). (c) Ioffe & Szegedy's Figure 1 run, both networks,
50,000 steps, compilation included (benchmarks/paper_full_run.py in a
subprocess). (d) Levers (benchmarks/levers.py). (e) The collection.

Every row of a table is timed in interleaved rounds (3 by default), median
per row, so the ratios hold on a shared machine; the load average is printed.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BATCH, PY, ROOT, SIZES, load, mnist, paper_mlp, rounds, table  # noqa: E402


def step_flops(batch: int = BATCH) -> float:
    """Matmul FLOPs of one SGD step: forward, weight gradients, input gradients (not layer 1's)."""
    fwd = sum(2 * batch * a * b for a, b in zip(SIZES[:-1], SIZES[1:]))
    return 3 * fwd - 2 * batch * SIZES[0] * SIZES[1]


def engine_runner(data, *, bn: bool, steps: int, configs: int = 1):
    """A callable: `bnh.fit` (configs=1) or `bnh.fit_many` over `configs` rates; returns model-steps."""
    import jax
    import numpy as np

    import bn_helpers as bnh

    net = paper_mlp(bn)
    seed = iter(range(10**6))

    def go():
        key = jax.random.PRNGKey(next(seed))
        if configs == 1:
            r = bnh.fit(net, data, key=key, lr=0.5, num_steps=steps, eval_every=steps)
        else:
            r = bnh.fit_many(net, data, key=key, lr=np.linspace(0.1, 1.0, configs, dtype=np.float32),
                             num_steps=steps, eval_every=steps)
        r.loss.block_until_ready()
        return configs * steps

    return go


def mlp_table(*, steps: int, baseline_steps: int, configs: list, reps: int) -> tuple[str, dict]:
    import jax

    import bn_helpers as bnh
    from baselines import numpy_runner, torch_runner

    data = mnist()
    idx = jax.device_get(bnh.train.batch_indices(jax.random.PRNGKey(0), len(data[0]), BATCH,
                                                 baseline_steps))
    runners = {}
    for bn in (False, True):
        label = "BN" if bn else "no BN"
        runners[(label, "engine, bnh.fit (1 model)")] = engine_runner(data, bn=bn, steps=steps)
        for k in configs:
            runners[(label, f"engine, bnh.fit_many (vmap {k})")] = engine_runner(
                data, bn=bn, steps=steps, configs=k)
        for threads in (1, 2):
            run = torch_runner(data[0], data[1], idx, bn=bn, threads=threads)
            if run is not None:
                runners[(label, f"PyTorch eager, {threads} thread{'s' * (threads > 1)}")] = run
        runners[(label, "NumPy, hand-written backward")] = numpy_runner(data[0], data[1], idx, bn=bn)
    res = rounds(runners, reps)
    try:
        import torch

        torch.set_num_threads(os.cpu_count())
    except ImportError:
        pass
    flops = step_flops()
    rows, summary = [], {}
    for label in ("no BN", "BN"):
        mine = {name: r for (lab, name), r in res.items() if lab == label}
        torch_best = max((r["per_s"] for n, r in mine.items() if n.startswith("PyTorch")), default=None)
        for name, r in mine.items():
            rows.append((f"{name} ({label})", f"{r['per_s']:,.0f}", f"{r['per_s'] * flops / 1e9:.1f}",
                         f"{r['per_s'] / torch_best:.2f}x" if torch_best else "",
                         f"{r['first_s']:.1f}" if name.startswith("engine") else ""))
        best_engine = max((r["per_s"], n) for n, r in mine.items() if n.startswith("engine"))
        summary[label] = (best_engine, torch_best)
    text = table(["implementation (paper MLP)", "model-steps/s", "GFLOP/s", "vs best PyTorch",
                  "first call s"], rows)
    for label, ((eng, name), tb) in summary.items():
        if tb:
            text += (f"\n{label}: best engine row ({name}) / best PyTorch = {eng / tb:.2f}x "
                     "per model-step (target >= 3x)")
    return text, res


def figure1(steps: int | None = None) -> str:
    """Run benchmarks/paper_full_run.py (both networks; 50,000 steps unless `steps`) in a fresh
    process; its one line, the parsed time including compilation, and the process's wall time."""
    extra = [] if steps is None else ["--steps", str(steps)]
    t0 = time.perf_counter()
    p = subprocess.run([PY, str(ROOT / "benchmarks" / "paper_full_run.py"), *extra],
                       capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    out = p.stdout.strip()
    if p.returncode:
        return f"paper_full_run.py failed (exit {p.returncode}):\n{out[-1500:]}\n{p.stderr[-1500:]}"
    lines = [f"$ python benchmarks/paper_full_run.py {' '.join(extra)}".rstrip(), out, ""]
    m = re.search(r"([\d,]+) steps: ([\d.]+) s including compilation", out)
    if m:
        n, s = int(m.group(1).replace(",", "")), float(m.group(2))
        what = "measured" if n == 50_000 else f"measured over {n:,} steps; not the full run"
        lines.append(f"**Figure 1, both networks, {n:,} steps: {s:.1f} s including compilation** "
                     f"({what}; target for 50,000 steps <= 30 s)")
    lines.append(f"whole process (imports, data, run): {wall:.1f} s")
    return "\n".join(lines)


def collection() -> str:
    """Every notebook in full mode (BN_FAST=0) with tools/run_notebooks.py; seconds per notebook."""
    env = dict(os.environ, BN_FAST="0")
    env.pop("XLA_FLAGS", None)
    t0 = time.perf_counter()
    p = subprocess.run([PY, str(ROOT / "tools" / "run_notebooks.py")], capture_output=True,
                       text=True, cwd=ROOT, env=env)
    total = time.perf_counter() - t0
    rows = []
    for ln in p.stdout.splitlines():
        m = re.match(r"(\S+\.ipynb)\s+([\d.]+) s\s+(\S+)", ln)
        if m:
            s = float(m.group(2))
            rows.append((m.group(1), f"{s:.1f}", m.group(3), "over 90 s" if s > 90 else ""))
    text = table(["notebook (BN_FAST=0)", "seconds", "status", ""], rows, "lrll")
    nb_sum = sum(float(r[1]) for r in rows)
    text += (f"\ntotal: {nb_sum:.0f} s in the notebooks, {total:.0f} s with kernel start-ups "
             f"(target <= 360 s, none above 90 s)")
    if p.returncode:
        text += "\n" + "\n".join(ln for ln in p.stdout.splitlines() if ln.startswith("    "))[-2000:]
    return text


def header() -> str:
    import jax
    import numpy as np

    versions = [f"jax {jax.__version__}", f"numpy {np.__version__}"]
    try:
        import torch

        versions.append(f"torch {torch.__version__}")
    except ImportError:
        pass
    return (f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
            f"{platform.processor() or platform.machine()}, {', '.join(versions)}; {load()}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="shorter runs, Figure 1 over 5,000 steps only, no levers")
    parser.add_argument("--steps", type=int, help="engine steps per timed run (default 2000, quick 1000)")
    parser.add_argument("--baseline-steps", type=int, default=500)
    parser.add_argument("--configs", type=int, nargs="+", default=[4, 16],
                        help="K values for bnh.fit_many")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--cnn-steps", type=int, help="CNN steps per timed run (default 200, quick 100)")
    parser.add_argument("--cnn", default="auto", choices=["auto", "engine", "reference"])
    parser.add_argument("--skip", nargs="*", default=[], choices=["mlp", "cnn", "figure1", "levers"])
    parser.add_argument("--levers", action="store_true", help="measure the levers even with --quick")
    parser.add_argument("--collection", action="store_true")
    parser.add_argument("--sliders", action="store_true")
    parser.add_argument("--write", action="store_true", help="write benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    steps = args.steps or (1000 if args.quick else 2000)
    cnn_steps = args.cnn_steps or (100 if args.quick else 200)

    sections = [f"# Benchmarks\n\n`python dev.py bench {' '.join(argv or sys.argv[1:])}`, {header()}"]

    def section(title, body):
        text = f"## {title}\n\n{body}"
        print("\n" + text, flush=True)
        sections.append(text)
        if args.write:  # after every section, so a cut-short run keeps what it measured
            (ROOT / "benchmarks" / "RESULTS.md").write_text("\n\n".join(sections) + "\n")

    t_start = time.perf_counter()
    if "mlp" not in args.skip:
        text, _ = mlp_table(steps=steps, baseline_steps=args.baseline_steps, configs=args.configs,
                            reps=args.reps)
        section(f"(a) Paper MLP 784-100-100-100-10, sigmoid, batch {BATCH} "
                f"({step_flops() / 1e6:.1f} MFLOP of matmuls per step; engine {steps} steps, "
                f"baselines {args.baseline_steps} steps per timed run; {load()})", text)
    if "cnn" not in args.skip:
        from cnn import cnn_rows, cnn_table

        res, src = cnn_rows(steps=cnn_steps, reps=args.reps, configs=4, engine=args.cnn)
        section(f"(b) Small CNN on Fashion-MNIST 28x28x1: conv3x3(16)+BN+ReLU+pool, "
                f"conv3x3(32)+BN+ReLU+pool, global average pool, dense 10, batch {BATCH} "
                f"({cnn_steps} steps per timed run; {load()})", f"engine rows: {src}\n\n{cnn_table(res)}")
    if "figure1" not in args.skip:
        section(f"(c) Figure 1 run ({load()})", figure1(5000 if args.quick else None))
    if "levers" not in args.skip and (args.levers or not args.quick):
        from levers import lever_table, measure

        k = max(args.configs)
        m = measure(steps, k, args.reps)
        section(f"(d) Levers ({m['load_before']} before, {m['load_after']} after)", lever_table(m, k))
    if args.collection:
        section(f"(e) The collection in full mode ({load()} before)", collection())
    if args.sliders:
        from sliders import slider_table

        section("Slider updates (FAST mode, 20 values per control; compute + draw, then PNG encode)",
                slider_table())
    print(f"\nbenchmark wall time: {time.perf_counter() - t_start:.0f} s; {load()}")
    if args.write:
        (ROOT / "benchmarks" / "RESULTS.md").write_text("\n\n".join(sections) + "\n")
        print("wrote benchmarks/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
