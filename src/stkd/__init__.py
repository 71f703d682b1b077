"""stkd: knowledge distillation for spatio-temporal data.

A large graph *teacher* is trained on sensor history; its knowledge is distilled into a small
*student* that forecasts (or raises event alarms) many times faster.
"""

__version__ = "0.1.0"

from stkd.errors import ConfigError, DataError, STKDError  # noqa: E402

__all__ = ["ConfigError", "DataError", "Result", "STKDError", "__version__", "from_frame", "load", "run"]
_API = ("run", "from_frame", "Result")  # stkd.api (docs: README "Python API")


def __getattr__(name: str):
    """Lazy attributes: ``stkd.load`` imports torch and the model code only when first used; ``stkd.run``,
    ``stkd.from_frame`` and ``stkd.Result`` (:mod:`stkd.api`) likewise, so ``import stkd`` stays light."""
    if name == "load":
        from stkd.deploy.loading import load

        return load
    if name in _API:
        from stkd import api

        return getattr(api, name)
    raise AttributeError(f"module 'stkd' has no attribute {name!r}")
