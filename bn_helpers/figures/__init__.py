"""Figures of the notebooks, one module per notebook, apart from the compute.

`bnh.figures.paper_experiment.plot_fig1(result)` draws what
`bnh.paper_experiment` computed. Modules load on first use.
"""

import importlib

_NOTEBOOKS = ("whitening", "zigzag", "init", "bn_math", "inference", "paper_experiment",
              "why_bn_works", "beyond_bn", "deep_residual")


def __getattr__(name):
    if name in _NOTEBOOKS:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'bn_helpers.figures' has no attribute {name!r}")
