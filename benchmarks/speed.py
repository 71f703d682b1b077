"""Speed: batch-1 latency and batched throughput of every model of a run in PyTorch eager,
``torch.compile`` and onnxruntime, and the training step split into data loading and compute.

    python benchmarks/speed.py --run bench-runs/evidence/los-loop/seed-0   # writes docs/results/speed-<dataset>.json

A run distilled from another run's teachers (``teacher_run.json``, as ``evidence.py --teacher-seed`` makes) has
its teachers timed too.

Latency is taken from ``--repeats`` single-window forwards per round after warm-up; throughput is windows
per second at batch ``--batch``; both are measured in ``--rounds`` rounds over all models in turn (eager,
compiled and ONNX alike; ``stkd.evaluate.time_in_rounds``, as a run measures its models), and the table
gives the 10th percentile of a runner's batch-1 calls and its quickest round's throughput (results before
2026-12-07: medians over rounds). A training step is timed as cutting the next batch the way training gets it
(``stkd.train.train_batches``, between steps; data loading) plus forward, loss,
backward and optimizer step (compute), medians over up to 30 steps. All on this machine's CPU. Any run
folder with trained models will do (``--run``); the default is seed 0 of ``benchmarks/evidence.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import machine_line, save_result


def torch_runners(model, one, big, compile_too: bool = True) -> dict:
    """``{"eager": (batch-1 call, batch call), "compile": ... or "fails: ..."}``, measured later in rounds."""
    out = {"eager": (lambda: model(one.x, one.tod, one.dow), lambda: model(big.x, big.tod, big.dow))}
    if not compile_too:
        return out
    try:
        compiled = torch.compile(model, dynamic=True)
        with torch.no_grad():
            compiled(one.x, one.tod, one.dow)
            compiled(big.x, big.tod, big.dow)
        out["compile"] = (lambda: compiled(one.x, one.tod, one.dow), lambda: compiled(big.x, big.tod, big.dow))
    except Exception as e:  # noqa: BLE001 - reported in the table, not hidden
        out["compile"] = f"fails: {type(e).__name__}"
    return out


def onnx_runner(model, one, big):
    """(batch-1 call, batch call) of the model exported to ONNX in onnxruntime, or "no export: ..."."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"

        class PredOnly(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, x, tod, dow):
                return self.m(x, tod, dow)["pred"]

        try:
            torch.onnx.export(PredOnly(model).eval(), (one.x, one.tod, one.dow), str(path), dynamo=False,
                              opset_version=17, input_names=["x", "tod", "dow"], output_names=["pred"],
                              dynamic_axes={"x": {0: "b"}, "tod": {0: "b"}, "dow": {0: "b"}, "pred": {0: "b"}})
        except Exception as e:  # noqa: BLE001
            return f"no export: {type(e).__name__}"
        sess = ort.InferenceSession(str(path), ort.SessionOptions(), providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}

    def feed(b):
        full = {"x": b.x.numpy(), "tod": b.tod.numpy(), "dow": b.dow.numpy()}
        return {k: v for k, v in full.items() if k in names}

    f1, fb = feed(one), feed(big)
    return (lambda: sess.run(None, f1), lambda: sess.run(None, fb))


def train_step_split(model, wd, batch_size: int, steps: int = 30, budget_s: float = 20.0) -> tuple[float, float]:
    """Median seconds of data loading and of compute per training step.

    Batches come the way ``stkd.train.fit`` draws them (``train_batches`` over the shuffled train split, cut
    between steps); data loading is the time the next batch takes to cut. After
    2 warm-up steps, ``steps`` steps are timed, or as many as fit in ``budget_s`` (at least 3), so a
    teacher taking seconds per step does not hold the benchmark for minutes. Medians, because a step
    that the machine's other work delays says nothing about the split.
    """
    from stkd.config import TrainConfig
    from stkd.distill.losses import masked_loss
    from stkd.evaluate import to_original_units
    from stkd.train import train_batches

    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    cfg = TrainConfig(batch_size=batch_size, seed=0)
    gen = torch.Generator().manual_seed(0)
    batches = iter(train_batches(wd, cfg, gen, 0, 1))
    load, compute = [], []
    started = time.perf_counter()
    for i in range(steps + 2):
        t0 = time.perf_counter()
        try:
            b = next(batches)
        except StopIteration:  # a new epoch
            batches = iter(train_batches(wd, cfg, gen, 0, 1))
            b = next(batches)
        t1 = time.perf_counter()
        pred = to_original_units(wd, model(b.x, b.tod, b.dow)["pred"])
        loss = masked_loss(pred, b.y, b.mask, kind="huber")
        opt.zero_grad()
        loss.backward()
        opt.step()
        t2 = time.perf_counter()
        if i >= 2:
            load.append(t1 - t0)
            compute.append(t2 - t1)
            if len(load) >= 3 and t2 - started > budget_s:
                break
    model.eval()
    return float(np.median(load)), float(np.median(compute))


# How a result's training steps got their batches: until commit 58140c0 the trainer cut them ahead in a
# thread (``prefetch``), which slowed the steps down (benchmarks/batch_stream.py); since, between steps.
SECTION = re.compile(r"speed-[a-z0-9][a-z0-9-]*")  # a --section: a result file's and a page block's name
STREAM_WORDS = {"prefetched": "the time a step waited for its batch from the trainer's batch stream as it was "
                              "then, cut ahead by a thread (`prefetch`, removed after 58140c0: it slowed the "
                              "steps down, so the compute column is slower than today's trainer)",
                "inline": "the time the next batch takes to cut from the trainer's batch stream, between steps "
                          "as the trainer does"}


def stream(result: dict) -> str:
    """``inline`` for a result that says so; ``prefetched`` for the earlier ones (measured with the thread)."""
    return result.get("batch_stream", "prefetched")


def teachers_of(runs: list[Path | None], wd) -> list:
    """The trained teachers of ``runs`` (None: no teacher run), each name made unique by its folder's position
    where several folders hold a teacher of the same name (the copies of an ensemble, seeds apart)."""
    from stkd.runs import load_trained

    return unique_names([t for run in runs if run is not None for t in load_trained(run, wd, roles=("teacher",))])


def unique_names(found: list) -> list:
    """``found`` with each name that several models share numbered in order (``stid#1``, ``stid#2``): the timing
    rounds and the table key models by name."""
    names = [t.name for t in found]
    for i, t in enumerate(found):
        if names.count(t.name) > 1:
            t.name = f"{t.name}#{names[:i].count(t.name) + 1}"
    return found


def later_copy(name: str) -> bool:
    """Whether a name is that of a second or later copy of one model (:func:`unique_names`: ``stid#2``)."""
    base, mark, number = name.rpartition("#")
    return bool(mark) and number.isdigit() and int(number) > 1


def ensemble_line(student: dict, teachers: list[dict]) -> str:
    """Where a student was distilled from several teachers: its batch-1 latency against all of them, whose
    forecasts the ensemble's needs one after another (the sum of their latencies); empty for one teacher."""
    if len(teachers) < 2:
        return ""
    total = sum(t["speeds"]["eager"][0] for t in teachers)
    params = sum(t["params"] for t in teachers)
    return (f"{student['name']} vs the {len(teachers)} teachers together (an ensemble's forecast runs each: the sum "
            f"of their batch-1 latencies, {total:.3f} ms, and of their parameters, {params:,}): "
            f"{total / student['speeds']['eager'][0]:.1f}x lower latency (eager), {params / student['params']:.1f}x "
            "fewer parameters.")


def fmt(v) -> str:
    if isinstance(v, str):
        return v
    return f"{v[0]:.3f} ms / {v[1]:,.0f} w/s"


def render(result: dict) -> str:
    rows = ["| model | role | params | eager (batch-1 latency / throughput) | torch.compile | onnxruntime | "
            "train step: data loading | compute | loading share |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for m in result["models"]:
        s, load, comp = m["speeds"], m["load_s"], m["compute_s"]
        rows.append(f"| {m['name']} | {m['role']} | {m['params']:,} | {fmt(s['eager'])} | "
                    f"{fmt(s.get('compile', 'skipped'))} | {fmt(s['onnx'])} | {load * 1e3:.2f} ms | "
                    f"{comp * 1e3:.1f} ms | {load / (load + comp):.1%} |")
    lines = []
    teachers = [x for x in result["models"] if x["role"] == "teacher"]
    for m in result["models"]:
        if m["role"] != "student_kd":
            continue
        for t in (x for x in teachers if not later_copy(x["name"])):  # the copies are in the ensemble's line
            s_lo, s_hi = min(m["eager_rounds_ms"]), max(m["eager_rounds_ms"])
            t_lo, t_hi = min(t["eager_rounds_ms"]), max(t["eager_rounds_ms"])
            ratio = t["speeds"]["eager"][0] / m["speeds"]["eager"][0]
            lines.append(f"{m['name']} vs {t['name']}: batch-1 latency {ratio:.1f}x lower (eager; rounds ranged "
                         f"{s_lo:.3f}-{s_hi:.3f} ms vs {t_lo:.3f}-{t_hi:.3f} ms, so at least {t_lo / s_hi:.1f}x in "
                         "the least favourable pairing of rounds).")
        if together := ensemble_line(m, teachers):
            lines.append(together)
    a = result["args"]
    if result.get("round_statistic") == "p10":
        how = (f"Latency is the 10th percentile of single-window forwards ({a['repeats']} per round, what a model "
               "takes when the machine's other work leaves it alone), throughput is windows/s at batch "
               f"{a['batch']} in the quickest round; both from {a['rounds']} rounds that take the ")
    else:
        how = (f"Latency is the median of single-window forwards ({a['repeats']} per round), throughput is "
               f"windows/s at batch {a['batch']}; each cell is the median over {a['rounds']} rounds that take the ")
    notes = (how + "models in turn (a shared machine's speed drifts over minutes, so one pass per model can favour "
             "whichever ran in a fast spell). `no export` marks a model torch's ONNX exporter could not export "
             "(e.g. a sparse graph product); `skipped`: torch.compile was not asked for that model. Loading share = "
             "data loading / (data loading + compute) of one training step: " + STREAM_WORDS[stream(result)]
             + "; medians over up to 30 steps, at most ~20 s per model.")
    ds = result["dataset"]
    own = result.get("section", "").removeprefix(f"speed-{ds['name']}").strip("-")  # a --section of its own
    return (f"### Speed on {ds['name']} ({ds['nodes']} nodes): every model of one run{f' ({own})' if own else ''}\n\n"
            f"Command: `{result['command']}`; torch threads: {result['threads']}; load average at the start: "
            f"{result['load_average']:.1f}  \n{machine_line(result)}\n\n" + "\n".join(rows) + "\n\n"
            + ("\n".join(lines) + "\n\n" if lines else "") + notes + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=Path("bench-runs/evidence/los-loop/seed-0"))
    ap.add_argument("--repeats", type=int, default=100, help="timed batch-1 calls per model and round")
    ap.add_argument("--rounds", type=int, default=5, help="rounds over all models")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--train-batch", type=int, default=64)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--compile-models", nargs="+", help="torch.compile only these (default: all)")
    ap.add_argument("--models", nargs="+", help="only these models of the run (default: all)")
    ap.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    ap.add_argument("--teacher-runs", nargs="+", type=Path,
                    help="time the teachers of these run folders in place of the run's linked teacher run (an "
                         "ensemble of extra teachers, as evidence.py --extra-teachers trains them, one folder each)")
    ap.add_argument("--section", help="the result's name (default speed-<dataset>): another run of the same data "
                                      "set kept beside the first, docs/results/<section>.json and its page block")
    args = ap.parse_args()
    if args.section is not None and not SECTION.fullmatch(args.section):
        ap.error(f"--section: {args.section!r} is not speed-<name> (lower-case letters, digits and '-')")
    if args.threads:
        torch.set_num_threads(args.threads)

    from stkd.data.windows import load_windowed
    from stkd.evaluate import time_in_rounds
    from stkd.models.base import count_params
    from stkd.runs import linked_teacher_run, load_run, load_trained

    load_average = os.getloadavg()[0]
    cfg, _ = load_run(args.run)
    wd = load_windowed(cfg.data)
    teacher_runs = args.teacher_runs or [linked_teacher_run(args.run)]  # the teachers it was distilled from
    found = teachers_of(teacher_runs, wd) + load_trained(args.run, wd)
    models = [m for m in found if not args.models or m.name in args.models]
    if not models:
        raise SystemExit(f"no trained models in {args.run}")
    starts = wd.starts["test"]
    views = {m.name: wd.view(m.inputs) for m in models}  # what each model reads (a privileged teacher: its lags)
    runners = {}
    for m in models:  # build everything first (exports, compilation), so the rounds only time
        model = m.model.float().eval()
        mwd = views[m.name]
        one, big = mwd.batch(starts[:1]), mwd.batch(np.resize(starts, args.batch))
        compile_too = not args.no_compile and (not args.compile_models or m.name in args.compile_models)
        runners[m.name] = {**torch_runners(model, one, big, compile_too), "onnx": onnx_runner(model, one, big)}
    calls = {(name, kind): (*runner, args.batch) for name, kinds in runners.items()
             for kind, runner in kinds.items() if not isinstance(runner, str)}  # a failure text is not timed
    with torch.no_grad():  # round-robin: a slow spell of the machine hits every model alike
        timed = time_in_rounds(calls, args.repeats * args.rounds, args.rounds)
    cells = {name: {kind: runner if isinstance(runner, str) else
                    (timed[name, kind].latency_ms, timed[name, kind].windows_per_s)
                    for kind, runner in kinds.items()} for name, kinds in runners.items()}
    rows = []
    for m in models:
        load, comp = train_step_split(m.model.float(), views[m.name], args.train_batch)
        rows.append({"name": m.name, "role": m.role, "params": count_params(m.model), "speeds": cells[m.name],
                     "eager_rounds_ms": timed[m.name, "eager"].rounds_ms, "load_s": load, "compute_s": comp})
        print(json.dumps(rows[-1]), flush=True)
    ds = wd.data
    section = args.section or f"speed-{ds.name}"
    path = save_result(section, "speed", {"dataset": {"name": ds.name, "nodes": ds.num_nodes}, "models": rows,
                                           "threads": torch.get_num_threads(), "load_average": load_average,
                                           "batch_stream": "inline", "round_statistic": "p10"},
                       vars(args) | {"run": None,  # folder names only: no machine path in the docs
                                     "teacher_runs": [p.name for p in args.teacher_runs or []] or None})
    print(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
