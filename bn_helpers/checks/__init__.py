"""Exercise checks: each `check_*` prints a one-line verdict with the number that matters and a hint.

One small module per topic; all checks are re-exported here, so a notebook
calls `bnh.checks.check_batch_norm_forward(my_fn)`.

Used in the exercises of every notebook.
"""

from ._core import Verdict, rel_error, verdict
from .bn_math import check_batch_norm_backward, check_batch_norm_forward

__all__ = [
    "Verdict",
    "rel_error",
    "verdict",
    "check_batch_norm_forward",
    "check_batch_norm_backward",
]
