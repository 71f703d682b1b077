"""Exceptions with messages that tell the user what to fix.

Every error raised on bad user input is one of these, so the CLI can print it without a traceback.
"""


class STKDError(Exception):
    """Base class of every error stkd raises on bad input or state."""


class DataError(STKDError, ValueError):
    """A data file or array is malformed: the message names the file, column, row and what was expected."""


class ConfigError(STKDError, ValueError):
    """A configuration key or value is invalid: the message names the key and the valid choices."""


class TrainingDiverged(STKDError):
    """The training loss became NaN or infinite: the settings (often ``train.lr``) cannot train this model.
    Its own class so that a hyper-parameter search can score such a trial as bad instead of stopping."""
