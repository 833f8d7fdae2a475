"""bn_helpers: the JAX helper package behind the bn-notebooks course on Batch Normalization.

Notebooks import it as `import bn_helpers as bnh`. The BN core is exported at
the top level; everything else lives in small submodules named for what they
hold (`bnh.data`, `bnh.train`, `bnh.plots`, `bnh.widgets`, `bnh.checks`, ...).
"""

from . import batchnorm, checks, cnn, compat, data, env, mlp, noise, norms, plots, toydata, train, widgets
from .batchnorm import apply_batch_norm, batch_norm, batch_norm_backward, init_batch_norm
from .compat import enable_x64, same_random_numbers
from .cnn import CNN
from .mlp import MLP
from .rnn import RNN
from .train import fit, fit_many

# One random stream on every supported JAX version (jax < 0.5 defaulted to another one)
same_random_numbers()

__version__ = "0.1.0"

# Topic modules of the later notebooks load on first use: `bnh.zigzag.fn(...)`
_TOPICS = ("whitening", "whitening_practice", "zigzag", "init", "bn_math", "inference",
           "paper_experiment", "why_bn_works", "beyond_bn", "deep_residual", "figures")


def __getattr__(name):
    if name in _TOPICS:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'bn_helpers' has no attribute {name!r}")

__all__ = [
    "batch_norm",
    "batch_norm_backward",
    "init_batch_norm",
    "apply_batch_norm",
    "enable_x64",
    "MLP",
    "CNN",
    "RNN",
    "fit",
    "fit_many",
    "batchnorm",
    "checks",
    "cnn",
    "compat",
    "data",
    "env",
    "mlp",
    "noise",
    "norms",
    "plots",
    "toydata",
    "train",
    "widgets",
]
