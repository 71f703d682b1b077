"""Deployment: forecasts from raw readings (``stkd.load``), ``stkd predict``, ``stkd export``, ``stkd serve``.

Modules, lowest layer first: ``spec`` (the serving spec and train statistics), ``preprocess`` (training's
input path for one window), ``backends`` and ``convert`` (running and converting the model),
``predictor`` (:class:`~stkd.deploy.predictor.Predictor`, ``Forecast``), ``loading`` (``stkd.load``),
``export``, ``batch`` (``stkd predict``), and the service: ``schemas``, ``state``, ``service``, ``asgi``,
``serve``. ``cli`` registers the subcommands without importing any of them. Nothing is imported here,
so ``import stkd.deploy.cli`` stays light.
"""
