"""Hyper-parameter search for the distilled student (``stkd tune``), with Optuna.

The teachers of a finished run are not retrained: their soft-label cache is built once (if missing) and
every trial reads it. A trial distils one student with sampled settings and is scored on the
validation split only (the task's monitored score); a median pruner stops trials that fall behind,
epoch by epoch. The study lives in an Optuna storage (a SQLite file in the output folder by default), so a
search stops and resumes, runs in several processes, and, with a server database, on several machines.
The test split is read once, at the end, for the best configuration.

- :mod:`stkd.tuning.space`: what is searched (defaults per task and student; a ``--space`` file)
- :mod:`stkd.tuning.trial`: one trial (a distilled student, per-epoch reports, pruning)
- :mod:`stkd.tuning.study`: storage, sampler, pruner, the budget, worker processes
- :mod:`stkd.tuning.results`: trials.csv, best.yaml, tune.json and the printed table
- :mod:`stkd.tuning.search`: the command from start to end
- :mod:`stkd.tuning.cli`: ``stkd tune``'s flags

Optuna is an optional extra (``pip install -c constraints.txt -e ".[tune]"``): only these modules import
it, when a search runs.
"""

from __future__ import annotations

from typing import Any

from stkd.errors import STKDError

INSTALL = 'pip install -c constraints.txt -e ".[tune]"'


def require_optuna() -> Any:
    """The ``optuna`` module, or an error saying how to install it (stkd's core does not need it)."""
    try:
        import optuna
    except ModuleNotFoundError as e:
        if e.name != "optuna":
            raise
        raise STKDError(f"stkd tune needs Optuna, an optional extra: {INSTALL}") from None
    return optuna
