"""stkd: knowledge distillation for spatio-temporal data.

A large graph *teacher* is trained on sensor history; its knowledge is distilled into a small
*student* that forecasts (or raises event alarms) many times faster.
"""

__version__ = "0.1.0"

from stkd.errors import ConfigError, DataError, STKDError  # noqa: E402

__all__ = ["ConfigError", "DataError", "STKDError", "__version__", "load"]


def __getattr__(name: str):
    """Lazy attributes: ``stkd.load`` imports torch and the model code only when first used."""
    if name == "load":
        from stkd.deploy.loading import load

        return load
    raise AttributeError(f"module 'stkd' has no attribute {name!r}")
