"""Event tasks (``task: classify``): labels from rules, event models, soft-label distillation, detection.

- :mod:`stkd.events.labels`: label rules -> ``[T, N]`` labels and mask, computed once; windows index in.
- :mod:`stkd.events.soft`: a forecasting teacher's forecasts -> event probabilities (soft targets).
- :mod:`stkd.events.detection`: incident detection delay against ground-truth events.

The task itself (losses, scores, evaluation of event models) is :class:`stkd.tasks.classify.ClassifyTask`.
"""
