"""Tasks behind one interface (:class:`stkd.tasks.base.Task`): forecasting (:mod:`stkd.tasks.forecast`)
and event classification (:mod:`stkd.tasks.classify`). :data:`stkd.pipeline.TASKS` maps a config's
``task`` to its class: a new task is one module with a Task subclass plus one line there.
"""
