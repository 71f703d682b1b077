"""Transfer to a new place: a teacher trained on a source data set guides a forecaster on a target data set
with little history (``stkd transfer``; README, "Transfer to a new place").

``source`` reads and checks the source teacher, ``routes`` trains and scores the five routes of one run,
``run`` loops over histories and seeds, ``report`` summarises; ``cli`` adds the subcommand.
"""
