"""Transfer to a new place: does a teacher trained on a source network help a target with little history?

    python benchmarks/transfer.py --case simulator --seeds 0 1 2 3 4
    python benchmarks/transfer.py --case simulator --seeds 0 1 2 3 4 --student stid-nb
    python benchmarks/transfer.py --case los-loop --seeds 0 1 2 3 4
    python benchmarks/transfer.py --case akl-pedestrians --seeds 0 1 2 3 4
    python benchmarks/transfer.py --case akl-pedestrians-same --seeds 0 1 2 3 4
    python benchmarks/transfer.py --case los-loop-same --seeds 0 1 2 3 4
    python benchmarks/transfer.py --case akl-pedestrians-same-nodes --seeds 0 1 2 3 4
    python benchmarks/transfer.py --case los-loop-same-nodes --seeds 0 1 2 3 4
    python benchmarks/transfer.py --case simulator --quick      # a smoke test: 1 epoch of 2 batches, nothing saved

Each case (but the two ``-same-nodes`` ones) trains a node-agnostic Graph WaveNet (``params.adaptive:
false``: no node embedding, the given graph only) on the source with its full history (``stkd train``),
then runs ``stkd transfer`` on the target for several kept histories and seeds: the student alone, the
source teacher zero-shot and fine-tuned, and students distilled from either, all scored on the target's
same test windows. The gain of each route over the student alone is paired by seed with a 95 % bootstrap
interval (:func:`stkd.paired.paired_gain`), as in the distillation evidence; a gain whose interval
contains zero is "not established".

Cases:
- ``simulator``: the traffic simulator's two networks of different size (60 and 30 sensors, 15-minute
  steps, 14 days; a controlled case: same physics, other roads and sensors).
- ``los-loop``: the 207 Los-loop detectors split into two disjoint regions by longitude (west half: source
  with the full 4.9 training days; east half: target).
- ``akl-pedestrians``: the 21 Auckland pedestrian counters split into two groups by longitude (hourly,
  so the kept histories are weeks).
- ``akl-pedestrians-same``: the same place: the teacher trained on all 21 counters' full history, the target
  the same 21 counters keeping only their last weeks (a student retrained on recent data only, with a
  teacher that learned from the archive); beside ``akl-pedestrians`` it says what a teacher that knows the
  very sensors gives over one that learned elsewhere (the same teacher, schedule and histories).
- ``akl-pedestrians-same-nodes``: ``akl-pedestrians-same`` with the teacher's adaptive graph on (node
  embeddings: per-node weights, which only its own sensors can use): what a teacher that knows each counter
  gives over the node-agnostic one of the other cases.
- ``los-loop-same``: the same for Los-loop's east region, the target of ``los-loop``: the teacher trained on
  its 104 detectors' 4.9 training days, the target the same detectors keeping their last day.
- ``los-loop-same-nodes``: ``los-loop-same`` with the teacher's adaptive graph on, as
  ``akl-pedestrians-same-nodes`` is to ``akl-pedestrians-same``.

Results: ``docs/results/transfer-<case>.json`` (the whole transfer.json plus the configs and timings) and the
curve ``docs/img/transfer-<case>.png`` (``-<student>`` added for ``--student stid-nb``).
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import time
from pathlib import Path

import numpy as np

from common import REPO, RESULTS, los_loop_data, machine_line, save_result

# node-agnostic (its weights load on any graph), at half Graph WaveNet's widths so that a case fits a 2-core CPU
TEACHER = {"name": "gwnet", "params": {"adaptive": False, "residual_channels": 16, "dilation_channels": 16,
                                       "skip_channels": 128, "end_channels": 256}}
# the same with its adaptive graph (node embeddings): per-node weights, so it teaches its own sensors only
NODE_AWARE_TEACHER = {"name": "gwnet", "params": {**TEACHER["params"], "adaptive": True}}
# the target's students (--student): the default STID reads its own sensor's window; stid-nb also the mean
# windows of its 4 strongest up- and downstream neighbours, the part of a graph teacher's edge it can compute
STUDENTS = {"stid": {"name": "stid", "params": {}},
            "stid-nb": {"name": "stid", "params": {"neighbours": 4, "neighbour_dim": 16}}}


def by_longitude(load) -> tuple[list[str], list[str]]:
    """The sensors of a data set split into a west and an east half by longitude (disjoint regions)."""
    data = load()
    lon = np.asarray(data.coords)[:, 1]
    order = np.argsort(lon, kind="stable")
    half = len(order) // 2
    return [data.nodes[i] for i in order[:half]], [data.nodes[i] for i in order[half:]]


def los_loop_regions() -> tuple[dict, dict]:
    from stkd.data.builtin import load_los_loop

    west, east = by_longitude(load_los_loop)
    return los_loop_data(nodes=west), los_loop_data(nodes=east)


AKL = {"source": "builtin", "name": "akl-pedestrians", "time_range": ["2023-01-01", "2025-12-31 23:00"],
       "graph": {"method": "knn", "k": 4}}  # the Auckland counters' data section of both Auckland cases


def akl_regions() -> tuple[dict, dict]:
    from stkd.config import parse_config
    from stkd.data.loaders import load_data

    west, east = by_longitude(lambda: load_data(parse_config({"data": AKL}).data))
    return {**copy.deepcopy(AKL), "nodes": west}, {**copy.deepcopy(AKL), "nodes": east}


def akl_same_place() -> tuple[dict, dict]:
    """Every Auckland counter as source and target: the target keeps a short history (``--history``)."""
    return copy.deepcopy(AKL), copy.deepcopy(AKL)


def los_loop_same_place() -> tuple[dict, dict]:
    """The east region of ``los-loop`` as source and target: the target keeps a short history (``--history``)."""
    _, east = los_loop_regions()
    return east, copy.deepcopy(east)


def simulator_networks() -> tuple[dict, dict]:
    def sim(nodes: int, seed: int) -> dict:
        return {"source": "builtin", "name": "synthetic-traffic",
                "simulator": {"nodes": nodes, "days": 14, "seed": seed, "freq": "15min"}}

    return sim(60, 0), sim(30, 1)


# name -> (data sections (source, target), kept target histories, training schedule, source teacher)
# (every epoch exactly max_batches batches: a short history passes over its windows several times an epoch,
# so every history gets the same optimiser steps; with at most max_batches a 1-day history had a few steps an
# epoch and its models stopped far from trained)
CASES = {
    "simulator": (simulator_networks, ["1d", "2d", "4d"],
                  {"epochs": 30, "patience": 8, "max_batches": 20, "min_batches": 20}, TEACHER),
    "los-loop": (los_loop_regions, ["1d", "2d", "4d"],
                 {"epochs": 30, "patience": 8, "max_batches": 25, "min_batches": 25}, TEACHER),
    "los-loop-same": (los_loop_same_place, ["1d"],
                      {"epochs": 30, "patience": 8, "max_batches": 25, "min_batches": 25}, TEACHER),
    "akl-pedestrians": (akl_regions, ["7d", "28d", "91d"],
                        {"epochs": 30, "patience": 8, "max_batches": 40, "min_batches": 40}, TEACHER),
    "akl-pedestrians-same": (akl_same_place, ["7d", "28d", "91d"],
                             {"epochs": 30, "patience": 8, "max_batches": 40, "min_batches": 40}, TEACHER),
    "akl-pedestrians-same-nodes": (akl_same_place, ["7d", "28d", "91d"],
                                   {"epochs": 30, "patience": 8, "max_batches": 40, "min_batches": 40},
                                   NODE_AWARE_TEACHER),
    "los-loop-same-nodes": (los_loop_same_place, ["1d"],
                            {"epochs": 30, "patience": 8, "max_batches": 25, "min_batches": 25}, NODE_AWARE_TEACHER),
}


def configs(case: str, quick: bool, student: str = "stid") -> tuple[dict, dict]:
    regions, _, schedule, teacher = CASES[case]
    source_data, target_data = regions()
    train = {"batch_size": 64, "lr": 0.002, "threads": 1, **schedule}
    if quick:
        train.update(epochs=1, max_batches=2, min_batches=2)
    common = {"teacher": copy.deepcopy(teacher), "student": copy.deepcopy(STUDENTS[student]), "train": train,
              "distill": {"alpha": 0.5, "loss": "huber"}, "eval": {"baselines": ["last"], "latency_repeats": 3}}
    return {"data": source_data, **copy.deepcopy(common)}, {"data": target_data, **copy.deepcopy(common)}


def run_case(case: str, seeds: list[int], runs: Path, quick: bool, student: str = "stid",
             finetune_lr: float | None = None, histories: list[str] | None = None) -> dict:
    from stkd.config import parse_config
    from stkd.pipeline import prepare_task, train_teachers
    from stkd.runs import open_run_dir
    from stkd.transfer.run import transfer

    source_raw, target_raw = configs(case, quick, student)
    where = runs / case
    t0 = time.perf_counter()
    source_run = where / "source"
    card = source_run / "models" / "gwnet" / "model.json"
    reused = card.is_file()  # a finished source run is reused: its time is the teacher's training time
    if not reused:
        task = prepare_task(parse_config(source_raw))  # as stkd train, less the source's own soft-label cache
        train_teachers(task, open_run_dir(task.cfg, task.wd, source_run, overwrite=True, resume=False),
                       progress=False)
    source_s = float(json.loads(card.read_text())["train_seconds"]) if reused else time.perf_counter() - t0
    t1 = time.perf_counter()
    folder = where / ("transfer" + suffix(student, finetune_lr))  # the source run is shared
    result = transfer(source_run, parse_config(target_raw), folder, histories=histories or CASES[case][1],
                      seeds=seeds, overwrite=True, progress=False, finetune_lr=finetune_lr)
    return {"case": case, "transfer": result, "source_config": source_raw, "target_config": target_raw,
            "seconds": {"source": source_s, "transfer": time.perf_counter() - t1}, "source_reused": reused,
            "student": student, "curve": str(folder / "plots" / "transfer_curve.png")}


def suffix(student: str = "stid", finetune_lr: float | None = None) -> str:
    """``-<student>`` for another student than the default STID, ``-ft<lr>`` for a fine-tuning rate of its own."""
    return ("" if student == "stid" else f"-{student}") + ("" if finetune_lr is None else f"-ft{finetune_lr:g}")


def section_name(case: str, student: str = "stid", finetune_lr: float | None = None) -> str:
    """The result file's and the page block's name: ``transfer-<case>`` and its :func:`suffix`."""
    return f"transfer-{case}" + suffix(student, finetune_lr)


# ------------------------------------------------------------------------------------------ rendering
def schedule_text(train: dict) -> str:
    """The routes' schedule in words: epochs of exactly ``max_batches`` batches where ``min_batches`` fixes
    them (a short history passes over its windows several times an epoch), else of at most that many."""
    if train.get("min_batches") == train["max_batches"]:
        return (f"{train['epochs']} epochs of {train['max_batches']} batches each (patience {train['patience']}; "
                "a short history's epoch passes over its windows several times, `train.min_batches`)")
    return f"{train['epochs']} epochs of at most {train['max_batches']} batches (patience {train['patience']})"


def render(result: dict) -> str:
    from stkd.transfer.report import findings, summarise, table

    t = result["transfer"]
    s, g = t["source"], t["target"]
    secs = result["seconds"]
    sched = result["target_config"]["train"]
    ft = result.get("args", {}).get("finetune_lr")  # a fine-tuning rate of its own (--finetune-lr)
    head = (f"### Transfer on {result['case']}: {s['data']} ({s['nodes']} sensors, full history) -> {g['data']} "
            f"({g['nodes']} sensors), seeds {t['seeds']}\n\n"
            f"Command: `{result['command']}`  \n{machine_line(result)}; source teacher {secs['source'] / 60:.1f} min"
            f"{' (its training, in a finished source run this one reused)' if result.get('source_reused') else ''}, "
            f"transfer {secs['transfer'] / 60:.1f} min  \n"
            f"Source teacher {s['model']} {result['source_config']['teacher']['params']}; student {g['student']['name']} {g['student']['params']}; "
            f"{schedule_text(sched)}, best epoch on the target's validation split"
            + (f"; the finetuned route at learning rate {ft:g} (the others at {sched['lr']:g})" if ft else "")
            + f"; {finetune_start(t)}.\n\n")
    curve = f"\n![test MAE against kept history](img/{section_name(result['case'], result.get('student', 'stid'), ft)}.png)\n"
    gains = summarise(t)
    lines = findings(t, gains) + edge_kept(t, gains)
    return head + "\n".join(lines) + "\n\n" + "\n".join(table(t, gains)) + "\n" + curve


def finetune_start(t: dict) -> str:
    """Whether the fine-tuned route could keep the source weights: results since epoch 0 was scored record
    ``finetuned_epoch`` per seed; older ones do not, and their fine-tuned teacher is its best trained epoch."""
    seeds = [run for h in t["runs"].values() for run in h["seeds"].values()]
    if seeds and all("finetuned_epoch" in run for run in seeds):
        return ("the finetuned route counts the source weights as epoch 0, kept where no epoch of fine-tuning "
                "beats them on validation")
    return ("measured before the finetuned route counted the source weights as epoch 0: its teacher is its best "
            "epoch of fine-tuning, even where the source weights scored better on validation")


def edge_kept(t: dict, gains: dict) -> list[str]:
    """A line per history and distilled route established better than the student alone: how much of its
    teacher's edge over the student alone it keeps, or that it ends better than the teacher (its gain is then
    not the teacher's edge handed on)."""
    from stkd.paired import verdict
    from stkd.transfer.report import route_scores

    lines = []
    for h in t["runs"]:
        for route, teacher in (("kd_source", "source_zero_shot"), ("kd_finetuned", "finetuned")):
            g = gains.get(h, {}).get(route)
            if g is None or verdict(g) != "better":
                continue
            kd, alone, tm = (float(np.mean(route_scores(t, h, r))) for r in (route, "target_only", teacher))
            head = f"- **{h}**: {route} ({kd:.3f}) is better than the student alone ({alone:.3f}, {g['mean']:+.1f} %)"
            if kd < tm:
                lines.append(f"{head} and than its teacher, {teacher} ({tm:.3f}): the student gains more than the "
                             "teacher's edge over it.")
            else:
                lines.append(f"{head} and keeps {100 * (alone - kd) / (alone - tm):.0f} % of its teacher's edge "
                             f"({teacher}, {tm:.3f}).")
    return lines


def same_place(result: dict) -> bool:
    """Whether the source and the target are the same sensors (a ``-same`` case: only the history differs)."""
    source, target = (result.get(k, {}).get("data") for k in ("source_config", "target_config"))
    return source is not None and source == target


def headline(result: dict) -> str:
    """The README line: per kept history, the student distilled from the source teacher against the same
    student trained on the target alone (mean test MAE over seeds, paired gain, wins, verdict)."""
    from stkd.paired import verdict
    from stkd.transfer.report import route_scores, summarise

    t = result["transfer"]
    gains = summarise(t)
    num = lambda x: f"{x:.2f}" if x < 10 else f"{x:.1f}"  # noqa: E731
    parts = []
    for h in t["runs"]:
        g = gains.get(h, {}).get("kd_source")
        if g is None:
            continue
        kd, alone, teacher = (float(np.mean(route_scores(t, h, r)))
                              for r in ("kd_source", "target_only", "source_zero_shot"))
        parts.append(f"{h} of history {num(kd)} against {num(alone)} alone and {num(teacher)} for the teacher "
                     f"({g['mean']:+.1f} %, better on {g['wins']} of {g['n']} seeds: {verdict(g)})")
    whom = ("the same sensors keeping a short history" if same_place(result)
            else f"{t['target']['nodes']} others")
    if t["source"].get("params", {}).get("adaptive"):
        whom += " (the teacher with node embeddings)"
    return (f"- **Transfer, {result['case']}** ({t['source']['nodes']} sensors with their full history teach a "
            f"student for {whom}, {len(t['seeds'])} seeds, test MAE of the student distilled "
            f"from the source teacher): " + "; ".join(parts)
            + " ([benchmarks](docs/benchmarks.md#transfer-to-a-new-place)).\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", required=True, choices=list(CASES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--runs", type=Path, default=Path("bench-runs/transfer"))
    ap.add_argument("--student", choices=list(STUDENTS), default="stid",
                    help="the target's student: stid (its own sensor) or stid-nb (also 4 up- and downstream "
                         "neighbours); another than stid writes transfer-<case>-<student>.json")
    ap.add_argument("--finetune-lr", type=float, default=None, metavar="LR",
                    help="the finetuned route's learning rate (stkd transfer --finetune-lr); writes "
                         "transfer-<case>-ft<LR>.json")
    ap.add_argument("--histories", nargs="+", default=None, help="kept histories (default: the case's)")
    ap.add_argument("--quick", action="store_true", help="1 epoch of 2 batches: a smoke test, nothing is saved")
    args = ap.parse_args()
    payload = run_case(args.case, args.seeds, args.runs, args.quick, args.student, args.finetune_lr, args.histories)
    if args.quick:
        print(json.dumps(payload["transfer"]["gains"], indent=1))
        return
    section = section_name(args.case, args.student, args.finetune_lr)
    shutil.copyfile(payload.pop("curve"), REPO / "docs" / "img" / f"{section}.png")
    src = payload["transfer"]["source"]
    src["run"] = str(Path("RUNS") / Path(src["run"]).resolve().relative_to(args.runs.resolve()))  # no machine path
    save_result(section, "transfer", payload, vars(args) | {"runs": None})
    print(render(json.loads((RESULTS / f"{section}.json").read_text())))


if __name__ == "__main__":
    main()
