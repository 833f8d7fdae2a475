"""Shared pieces of the benchmark scripts: timing in rounds, workers in subprocesses, the load.

The machine is shared (2 cores, other jobs): every table measures its rows
in interleaved rounds (row A, row B, ..., then again), takes the median of
the rounds per row and reports ratios measured in one run.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
PY = sys.executable
SIZES = (784, 100, 100, 100, 10)
BATCH = 60
# One single-threaded XLA computation per CPU device (read when jax is imported)
SINGLE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
TWO_DEVICES_FLAGS = "--xla_force_host_platform_device_count=2 " + SINGLE_THREAD_FLAGS


def load() -> str:
    """The machine's load averages (1, 5, 15 min) and CPU count, as one short string."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} CPUs"


def rounds(runners: dict, reps: int = 3) -> dict:
    """Time every runner `reps` times in interleaved rounds, after one untimed warm-up call each.

    A runner is a callable returning the number of model-steps it did. Returns,
    per name: model-steps/s (median wall time), model-steps per CPU-second of
    this process (median), and the warm-up call's wall time (compile included).
    """
    out = {}
    for name, fn in runners.items():
        t0 = time.perf_counter()
        fn()
        out[name] = {"first_s": time.perf_counter() - t0, "wall": [], "cpu": [], "n": 0}
    for _ in range(reps):
        for name, fn in runners.items():
            t0, c0 = time.perf_counter(), time.process_time()
            n = fn()
            out[name]["wall"].append(time.perf_counter() - t0)
            out[name]["cpu"].append(time.process_time() - c0)
            out[name]["n"] = n
    for r in out.values():
        r["per_s"] = r["n"] / statistics.median(r["wall"])
        r["per_cpu_s"] = r["n"] / statistics.median(r["cpu"])
    return out


def worker(script: str, args: list, *, xla_flags: str | None = None, env: dict | None = None,
           timeout: float = 1200) -> dict:
    """Run `python benchmarks/<script> <args>` in a fresh process; return its `RESULT {json}` line."""
    e = dict(os.environ)
    e.pop("XLA_FLAGS", None)
    if xla_flags:
        e["XLA_FLAGS"] = xla_flags
    e.update(env or {})
    e.setdefault("PYTHONPATH", str(ROOT))
    p = subprocess.run([PY, str(BENCH / script), *map(str, args)], capture_output=True, text=True,
                       env=e, timeout=timeout, cwd=ROOT)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"{script} {args} failed (exit {p.returncode}):\n{p.stdout[-2000:]}\n"
                       f"{p.stderr[-3000:]}")


def emit(result) -> None:
    """What a worker prints for `worker` to read."""
    print("RESULT " + json.dumps(result), flush=True)


def mnist():
    import bn_helpers as bnh

    ds = bnh.data.load_dataset("mnist5k")
    return (ds.x_train, ds.y_train, ds.x_test, ds.y_test)


def paper_mlp(bn: bool):
    import bn_helpers as bnh

    return bnh.MLP(SIZES, activation="sigmoid", bn="before" if bn else None, init="gaussian",
                   init_std=0.01)


def table(header: list, rows: list, align: str | None = None) -> str:
    """A Markdown table; `align` is one character per column, 'l' or 'r' (default: l then r)."""
    align = align or "l" + "r" * (len(header) - 1)
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]

    def line(r):
        return "| " + " | ".join(c.ljust(w) if a == "l" else c.rjust(w)
                                 for c, w, a in zip(r, widths, align)) + " |"

    sep = "|" + "|".join("-" * (w + 1) + (":" if a == "r" else "-") for w, a in zip(widths, align)) + "|"
    return "\n".join([line(header), sep, *map(line, cells)])
