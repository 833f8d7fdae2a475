"""Make the two compatibility venvs and run every notebook in them, as a Colab user would.

    python3 tools/compat_envs.py setup colab|floor [--wheel W]   make/refresh .venv-<set>
    python3 tools/compat_envs.py run colab|floor [--wheel W]     setup, then every notebook and
                                                                  the unit tests of the core
    python3 tools/compat_envs.py unit colab|floor [--wheel W]    setup, then only those unit tests

`colab`: Google Colab's runtime pins (ci/colab-constraints.txt) on Python 3.13 when this
machine has it (Colab's version), else python3. `floor`: the lowest versions pyproject.toml
declares (ci/floor-constraints.txt) on Python 3.10, the oldest the project declares, else
python3. Each venv gets the pinned runtime plus what runs notebooks (ipykernel, nbclient), then
the bn-helpers wheel with `--no-deps`, exactly as a notebook's Colab setup cell installs it. The
notebooks are run in FAST mode from a temporary folder outside the checkout, with
tools/run_notebooks.py (the runner the tests use). Standard library only.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETS = {
    # name: (preferred Python, packages installed under the constraints)
    "colab": ("3.13", ["jax", "jaxlib", "numpy", "matplotlib", "ipywidgets", "widgetsnbextension",
                       "ipykernel", "ipython", "notebook", "traitlets", "pillow"]),
    "floor": ("3.10", ["jax", "jaxlib", "numpy", "matplotlib", "ipywidgets", "ipykernel"]),
}
RUNNER_TOOLS = ["nbclient", "nbformat", "pytest", "pytest-timeout", "pyyaml"]
# Unit tests that also run on each set: the BN core, the engine, the widgets and every exercise
# check with its table of mistakes (the rest needs the test extra: keras, torch, a browser)
UNIT_TESTS = ["tests/test_compat.py", "tests/test_batchnorm.py", "tests/test_norms.py",
              "tests/test_cnn.py", "tests/test_train.py", "tests/test_rnn.py",
              "tests/test_widgets_and_checks.py", "tests/test_checks_*.py"]


def venv_dir(name: str) -> Path:
    return ROOT / f".venv-{name}"


def venv_python(name: str) -> Path:
    return venv_dir(name) / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def find_python(version: str) -> str:
    """An interpreter of `version` that really runs (pyenv shims may not), else this one."""
    candidates = [shutil.which(f"python{version}") or ""]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}*/bin/python{version}")))
    for exe in candidates:
        if exe and subprocess.call([exe, "-c", "import venv, ensurepip"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL) == 0:
            return exe
    print(f"note: no working python{version} found; using {sys.executable}", flush=True)
    return sys.executable


def build_wheel(out: Path) -> Path:
    """The bn-helpers wheel, built from the checkout with the `build` front end or pip."""
    out.mkdir(parents=True, exist_ok=True)
    main_py = ROOT / ".venv" / "bin" / "python"
    py = str(main_py) if main_py.exists() else sys.executable
    subprocess.run([py, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
                   check=True)
    return next(out.glob("bn_helpers-*.whl"))


def _stamp(name: str) -> str:
    text = (ROOT / "ci" / f"{name}-constraints.txt").read_bytes() + repr(SETS[name]).encode()
    return hashlib.sha256(text).hexdigest()


def setup(name: str, wheel: Path | None = None) -> Path:
    """Create .venv-<name> (unless current), then install the wheel into it with --no-deps."""
    version, packages = SETS[name]
    py, stamp = venv_python(name), venv_dir(name) / ".bn-setup-stamp"
    if not (py.exists() and stamp.exists() and stamp.read_text() == _stamp(name)):
        shutil.rmtree(venv_dir(name), ignore_errors=True)
        base = find_python(version)
        print(f"creating {venv_dir(name)} with {base} ...", flush=True)
        subprocess.run([base, "-m", "venv", str(venv_dir(name))], check=True)
        pip = [str(py), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        constraints = ROOT / "ci" / f"{name}-constraints.txt"
        subprocess.run([*pip, "-c", str(constraints), *packages, *RUNNER_TOOLS], check=True)
        stamp.write_text(_stamp(name))
    if wheel is None:
        wheel = build_wheel(Path(tempfile.mkdtemp(prefix="bn-wheel-")))
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall",
                    str(wheel)], check=True)
    versions = subprocess.check_output(
        [str(py), "-c", "import sys, jax, numpy, matplotlib, ipywidgets, IPython; "
         "print('python', sys.version.split()[0], '| jax', jax.__version__, '| numpy', "
         "numpy.__version__, '| matplotlib', matplotlib.__version__, '| ipywidgets', "
         "ipywidgets.__version__, '| IPython', IPython.__version__)"], text=True).strip()
    print(f"[{name}] {versions}", flush=True)
    return py


def run(name: str, wheel: Path | None = None, notebooks: bool = True) -> int:
    """Set up the venv, run every notebook in FAST mode outside the checkout, then the unit tests."""
    t0 = time.perf_counter()
    py = setup(name, wheel)
    print(f"[{name}] venv ready in {time.perf_counter() - t0:.0f} s", flush=True)
    env = dict(os.environ, BN_FAST="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.pop("MPLBACKEND", None)
    code = 0
    if notebooks:
        with tempfile.TemporaryDirectory(prefix=f"bn-{name}-") as tmp:
            # Run from a folder outside the checkout, so only the installed wheel can be imported
            code = subprocess.call([str(py), str(ROOT / "tools" / "run_notebooks.py"), "--outside",
                                    str(Path(tmp) / "notebooks"), "--expect-installed"],
                                   cwd=tmp, env=env)
        print(f"[{name}] all notebooks in {time.perf_counter() - t0:.0f} s (exit {code})", flush=True)
    t1 = time.perf_counter()
    tests = sorted({str(p) for pattern in UNIT_TESTS for p in ROOT.glob(pattern)})
    with tempfile.TemporaryDirectory(prefix=f"bn-{name}-tests-") as tmp:
        # From a folder outside the checkout, so the tests import the installed wheel
        unit = subprocess.call([str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                "--rootdir", str(ROOT), "-m", "not slow and not browser", *tests],
                               cwd=tmp, env=env)
    print(f"[{name}] unit tests of the core and the checks in {time.perf_counter() - t1:.0f} s "
          f"(exit {unit})", flush=True)
    return code or unit


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("setup", "run", "unit"))
    parser.add_argument("set", choices=sorted(SETS))
    parser.add_argument("--wheel", type=Path, help="a built bn-helpers wheel (default: build one)")
    args = parser.parse_args(argv)
    if args.action == "setup":
        setup(args.set, args.wheel)
        return 0
    return run(args.set, args.wheel, notebooks=args.action == "run")


if __name__ == "__main__":
    sys.exit(main())
