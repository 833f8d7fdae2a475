"""Exercise checks: each `check_*` prints a one-line verdict with the number that matters and a hint.

One small module per topic; all checks are re-exported here, so a notebook
calls `bnh.checks.check_batch_norm_forward(my_fn)`.

Used in the exercises of every notebook.
"""

from ._core import CheckFailed, Verdict, fallback, grading_mode, rel_error, verdict
from .bn_math import check_batch_norm_backward, check_batch_norm_forward
from .bn_math_conv import check_batch_norm_conv

__all__ = [
    "CheckFailed",
    "Verdict",
    "fallback",
    "grading_mode",
    "rel_error",
    "verdict",
    "check_batch_norm_forward",
    "check_batch_norm_backward",
    "check_batch_norm_conv",
]

# Checks of the later notebooks live in one module per topic, loaded on first use
_TOPICS = ("whitening", "zigzag", "init", "inference", "paper_experiment", "why_bn_works",
           "beyond_bn", "deep_residual")


def __getattr__(name):
    import importlib

    for topic in _TOPICS:
        try:
            module = importlib.import_module(f".{topic}", __name__)
        except ModuleNotFoundError as err:
            if err.name == f"{__name__}.{topic}":
                continue
            raise
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"bn_helpers.checks has no check named {name!r}")
