"""What a run's teachers read that its distilled student does not: the "what to do" lines of the report's
"what the student kept" summary, read from ``metrics.json`` alone.

A student can take from its teacher only what it can compute from its own inputs. Where a teacher reads lagged
channels (the same clock times days back) or other sensors (a graph, attention across sensors) that the student
does not, the summary names them and the setting that gives them to the student. The model registry (which
students can read their neighbours) is imported where a line needs it: printing a table must not import torch.
"""

from __future__ import annotations


def _lags(entry: dict) -> list[str]:
    """The lagged channels a model reads (its metrics entry's ``inputs.lags``), in its config's order."""
    return [str(g) for g in ((entry.get("inputs") or {}).get("lags") or [])]


def privileged_lags_line(models: dict[str, dict], student: str) -> str | None:
    """A "what to do" line where a teacher reads lagged channels that ``student`` does not (a privileged
    teacher): the student's inputs do not hold what the teacher reads there, and ``student.inputs.lags``
    gives them to it, served from that much history. None when every teacher's lags are the student's."""
    own = _lags(models.get(student) or {})
    extra = {n: [g for g in _lags(e) if g not in own] for n, e in models.items() if e.get("role") == "teacher"}
    extra = {n: gs for n, gs in extra.items() if gs}
    if not extra:
        return None
    lags = list(dict.fromkeys(g for gs in extra.values() for g in gs))
    who = ", ".join(f"`{n}`" for n in extra)
    return (f"- **Read by the teacher, not by the student**: {who} also read{'s' if len(extra) == 1 else ''} the "
            f"same clock times {', '.join(lags)} back (`inputs.lags`), which `{student}`'s inputs do not hold. "
            f"`student.inputs: {{lags: [{', '.join([*own, *lags])}]}}` gives them to the student too; it is then "
            "served from a history that reaches back to its longest lag (docs/distillation.md, \"Teachers that "
            "know more than the student\").")


def privileged_nodes_line(models: dict[str, dict], student: str) -> str | None:
    """A "what to do" line where a teacher forecasts each sensor from the others too (a graph, given or learned,
    or attention across sensors) and ``student`` reads its own sensor only: what the teacher learned from the
    other sensors is not in the student's inputs, and the students that can read their neighbours' windows
    (``params.neighbours``) are named. None where the student reads other sensors too, no teacher does, or the
    run was scored before its entries said (no ``reads_other_nodes``)."""
    mine = models.get(student) or {}
    if mine.get("reads_other_nodes") is not False:
        return None
    who = [n for n, e in models.items() if e.get("role") == "teacher" and e.get("reads_other_nodes")]
    if not who:
        return None
    from stkd.models.base import hyperparameters
    from stkd.models.registry import MODELS, STUDENTS

    readers = [n for n in STUDENTS if "neighbours" in hyperparameters(MODELS[n])]
    model = str(mine.get("model"))
    how = (f"`student.params: {{neighbours: 4}}` gives `{student}` the weighted mean windows of each sensor's 4 "
           "strongest downstream and upstream neighbours on the data's graph" if model in readers else
           f"`{model}` cannot read other sensors; the {' and '.join(readers)} students can, with "
           "`student.params: {neighbours: 4}` (each sensor's 4 strongest downstream and upstream neighbours on the "
           "data's graph)")
    return (f"- **Read by the teacher, not by the student: the other sensors**: {', '.join(f'`{n}`' for n in who)} "
            f"forecast{'s' if len(who) == 1 else ''} each sensor from the others too, while `{student}` reads its "
            f"own sensor only, so what the teacher learned from the other sensors is not in its inputs. {how} "
            "(docs/distillation.md, \"Teachers that know more than the student\").")
