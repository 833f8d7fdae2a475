"""One entry point for the collection; needs only Python >= 3.10 (standard library).

    python dev.py lab        set up .venv and open the notebooks in JupyterLab
    python dev.py test       set up .venv and run every test (unit, notebooks, browser)
    python dev.py html       execute every notebook and write static HTML to build/html/
    python dev.py student    write student copies (solutions removed) to build/student/
    python dev.py bench      print the benchmark table
    python dev.py grade SUBMISSION.ipynb [...] [--out DIR] [--timeout S]
                             grade submitted notebooks (table, CSV and JSON; docs/instructors.md)
    python dev.py nbgrader generate|autograde ...
                             build an nbgrader course from the notebooks and autograde submissions

Setup creates `.venv` beside this file and installs the package with its test
extra (`pip install -e .[test]`); it is skipped when nothing changed since the
last install. Extra arguments after `test` go to pytest.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".bn-setup-stamp"


def _fingerprint() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def setup() -> None:
    """Create .venv and install the package with its test tools, unless already current."""
    if sys.version_info < (3, 10):
        sys.exit(f"Python >= 3.10 is needed, this is {sys.version.split()[0]}")
    if not PY.exists():
        print(f"creating {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    lab_overrides()
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    print("installing bn-helpers and its dependencies (first time: a few minutes) ...", flush=True)
    run([PY, "-m", "pip", "install", "--upgrade", "--quiet", "pip"])
    run([PY, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[test]"])
    STAMP.write_text(_fingerprint())


# JupyterLab and Notebook 7 from .venv save widget state with the notebook, so a saved notebook
# reopens showing its last pictures instead of "Error displaying widget: model not found".
# Notebook 7 matches shortcuts in the capture phase: its command-mode arrow-key shortcuts would
# swallow the arrow keys of a focused slider, so they are re-added for everything but sliders
# (see tests/browser/conftest.py, KEYBOARD_OVERRIDES, which this must equal).
_SEL = ".jp-Notebook.jp-mod-commandMode:not(.jp-mod-readWrite) :focus"
_ARROWS = {"ArrowUp": "notebook:move-cursor-up", "ArrowDown": "notebook:move-cursor-down",
           "ArrowLeft": "notebook:move-cursor-heading-above-or-collapse",
           "ArrowRight": "notebook:move-cursor-heading-below-or-expand"}
LAB_OVERRIDES = {
    "@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True},
    "@jupyterlab/shortcuts-extension:shortcuts": {"shortcuts": [
        e for k, c in _ARROWS.items() for e in (
            {"command": c, "keys": [k], "selector": _SEL, "disabled": True},
            {"command": c, "keys": [k], "selector": _SEL + ":not([role='slider'])"})]},
}


def lab_overrides(prefix: Path = VENV) -> Path:
    """Write (merge) the venv's JupyterLab settings overrides; return the file."""
    path = prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    current = json.loads(path.read_text()) if path.exists() else {}
    for plugin, settings in LAB_OVERRIDES.items():
        current.setdefault(plugin, {}).update(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed: two test workers may merge at once, and neither may read half a file
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(current, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def run(cmd, **kw) -> int:
    code = subprocess.call([str(c) for c in cmd], cwd=kw.pop("cwd", ROOT), **kw)
    if code and kw.get("check", True):
        sys.exit(code)
    return code


def lab(args) -> None:
    run([PY, "-m", "jupyter", "lab", str(ROOT / "notebooks"), *args])


def test(args) -> None:
    # The classic-Notebook browser tests run in Colab's versions (.venv-colab, made once)
    run([sys.executable, str(ROOT / "tools" / "compat_envs.py"), "setup", "colab"])
    env = dict(os.environ, BN_FAST="1", PYTHONHASHSEED="0")
    # JAX's persistent compilation cache: the tests run each notebook several times
    env.setdefault("JAX_COMPILATION_CACHE_DIR", str(ROOT / ".cache" / "jax"))
    env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    env.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    # Two workers; each test file stays on one worker (one JupyterLab for the browser tests)
    parallel = [] if "-n" in args else ["-n", "2", "--dist", "loadfile"]
    code = subprocess.call([str(PY), "-m", "pytest", *parallel, *args], cwd=ROOT, env=env)
    sys.exit(code)


def tool(name: str):
    def call(args):
        run([PY, str(ROOT / "tools" / f"{name}.py"), *args])
    return call


def tool_here(name: str):
    """A tool whose file arguments are relative to the caller's folder (grade, nbgrader)."""
    def call(args):
        run([PY, str(ROOT / "tools" / f"{name}.py"), *args], cwd=Path.cwd())
    return call


COMMANDS = {
    "lab": lab,
    "test": test,
    "html": tool("build_html"),
    "student": tool("student_copy"),
    "grade": tool_here("grade"),
    "nbgrader": tool_here("nbgrader_build"),
    "bench": lambda args: run([PY, str(ROOT / "benchmarks" / "run.py"), *args]),
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        sys.exit(2)
    setup()
    COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
