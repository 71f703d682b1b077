"""Scale: seconds and peak memory of the student and each teacher at N = 200, 1,000, 5,000 and 20,000
sensors on the simulator, and the memory guard's verdict where a model does not fit.

    python benchmarks/scale.py            # ~10-15 min on a 2-core CPU machine: docs/results/scale.json
    python benchmarks/scale.py --quick    # N = 200 and 1,000 only, a smoke test: printed, nothing saved

For each N the road-network simulator (``builtin: synthetic-traffic``) makes ``DAYS[N]`` days of 5-minute
speeds once; every (model, N) is then measured in a fresh subprocess so that peak memory
(``ru_maxrss``, the resident high-water mark of the whole process: Python, torch, the data and its
prepared copy, the model) never mixes between measurements. In each subprocess the memory guard
(:func:`stkd.memory.check_fits`) runs first, as in ``stkd run``; a refused model is recorded with the
guard's message.

- Student (STID): one whole epoch over the train windows with ``stkd.train.fit`` (batch 32), timed
  without its validation pass. Reported as seconds per epoch and microseconds per (window x node): the
  latter is flat when the cost is linear in N.
- Teachers (Graph WaveNet, STAEformer, AGCRN, default hyper-parameters: Graph WaveNet's dense adaptive
  adjacency switches itself off above 2,000 nodes and it then runs on the simulator's sparse road
  graph): a few training steps at batch 1 (forward, masked Huber loss, backward, AdamW), the first one
  not counted.
- Graph WaveNet on node subsets (N >= 5,000): each step trains on the sub-graph of ``K`` nodes grown
  by breadth-first search from a random sensor (``train.node_subset`` in a config: the same
  :func:`stkd.data.graph.neighbourhood_sample` and ``model.set_node_subset``); afterwards the same
  model runs one forward over all N nodes, timed. This is the supported way to train a teacher where
  one machine's memory is the limit (docs/scale.md).

Everything runs on this machine's CPU with one torch thread per measurement (``--threads``): the
machine is shared with other sessions, and with more threads than free cores OpenMP's waits make small
ops up to 10x slower. Seconds still carry that noise (the load average is recorded with the table).

Each measurement is written to ``docs/results/scale.json`` as soon as it is made (with the plot
``docs/img/scale.png``); an interrupted invocation resumes at the next (model, N) (``--redo``: start over).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import REPO, RESULTS, command, machine_line, save_result

DAYS = {200: 30, 1000: 14, 5000: 7, 20000: 3}  # days of 5-minute data per N (time budget: whole epochs of the student)
QUICK_DAYS = {200: 3, 1000: 2}
STUDENT_BATCH = 32
TEACHER_BATCH = 1
SUBSET_NODES = 2000  # K for the node-subset rows
TEACHERS = ("gwnet", "staeformer", "agcrn")
IMG = REPO / "docs" / "img" / "scale.png"
SECTION = "scale"
GiB = 2**30


# ============================================================================ node subsets (the supported path)
def subset_step(model, opt, wd, starts, k: int, rng: np.random.Generator, loss_kind: str = "huber") -> float:
    """One training step on a sampled neighbourhood of ``k`` nodes, as ``stkd.train.fit`` does with
    ``train.node_subset``: the model is pointed at the sub-graph, the batch cut to its nodes."""
    from stkd.config import RunConfig, TrainConfig
    from stkd.data.graph import neighbourhood_sample
    from stkd.tasks.forecast import ForecastTask

    idx = neighbourhood_sample(wd.data.adjacency, k, rng)
    model.set_node_subset(idx)
    b = wd.batch(starts, nodes=idx)  # [B, P, K, F] ...
    loss, _ = ForecastTask(RunConfig(train=TrainConfig(loss=loss_kind)), wd).hard_loss()(b, model(b.x, b.tod, b.dow))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


# ============================================================================ one measurement (subprocess)
def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def child(job: dict) -> dict:
    """Run one measurement described by ``job``; return a JSON-safe result."""
    import torch

    torch.set_num_threads(job.get("threads", 1))
    from stkd.config import DataConfig
    from stkd.data.windows import prepare
    from stkd.errors import ConfigError
    from stkd.memory import MemoryLimitError, check_fits, estimate_memory
    from stkd.models.registry import build_model
    from stkd.steps import model_spec

    with open(job["data"], "rb") as fh:
        data = pickle.load(fh)
    name, params, batch, kind = job["model"], job.get("params", {}), job["batch"], job["kind"]
    n = data.num_nodes
    res = {"model": job["label"], "N": n, "T": data.num_steps, "batch": batch, "kind": kind}
    cfg = DataConfig(source="builtin", name="synthetic-traffic")
    wd = prepare(data, cfg)
    res["train_windows"] = int(len(wd.starts["train"]))
    k = min(job.get("subset", n), n)
    spec = model_spec(wd)
    train_nodes = k if kind == "subset" else None  # the data is the full network's, a step sees K nodes
    est = estimate_memory(name, spec, params, batch_size=batch, eval_batch_size=1 if kind == "subset" else None,
                          num_steps=data.num_steps, train_nodes=train_nodes)
    res["estimate_bytes"] = est.total_bytes
    try:
        check_fits(name, spec, params, batch_size=batch, data_loaded=True, train_nodes=train_nodes)
    except MemoryLimitError as e:
        res.update(status="too large", message=str(e), peak_bytes=_peak_rss())
        return res

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    try:
        model = build_model(name, spec, params)
    except ConfigError as e:  # a model's own bound (e.g. AGCRN's max_nodes: its N x N graph), before any memory
        res.update(status="refused", message=str(e), peak_bytes=_peak_rss())
        return res
    if kind == "epoch":  # the loop of stkd.train.fit: forward, masked Huber, backward, clip, AdamW
        from stkd.config import RunConfig
        from stkd.tasks.forecast import ForecastTask

        opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
        loss_fn = ForecastTask(RunConfig(), wd).hard_loss()
        model.train()
        gen = torch.Generator().manual_seed(0)
        t0, c0 = time.perf_counter(), time.process_time()
        windows = 0
        for b in wd.iterate("train", batch, shuffle=True, generator=gen, drop_last=True):
            loss, _ = loss_fn(b, model(b.x, b.tod, b.dow))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            windows += len(b)
        res.update(status="ok", seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0,
                   windows=windows, loss=float(loss.detach()))
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        model.train()
        starts = wd.starts["train"]
        times, cpu, losses = [], [], []
        for step in range(job.get("max_steps", 4)):
            chunk = rng.choice(starts, batch, replace=False)
            t0, c0 = time.perf_counter(), time.process_time()
            if kind == "subset":
                losses.append(subset_step(model, opt, wd, chunk, k, rng))
            else:
                from stkd.config import RunConfig
                from stkd.tasks.forecast import ForecastTask

                b = wd.batch(chunk)
                loss, _ = ForecastTask(RunConfig(), wd).hard_loss()(b, model(b.x, b.tod, b.dow))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            if step + 1 >= job.get("min_steps", 2) and sum(times) > job.get("budget_s", 30.0):
                break
        timed = times[1:] or times
        res.update(status="ok", seconds=statistics.median(timed), cpu_seconds=statistics.median(cpu[1:] or cpu),
                   first_step=times[0], steps=len(times),
                   windows=batch, loss=losses[-1])
        if kind == "subset":  # the subset-trained weights run on the whole network
            model.set_node_subset(None)
            model.eval()
            b = wd.batch(starts[:1])
            with torch.no_grad():
                t0 = time.perf_counter()
                pred = model(b.x, b.tod, b.dow)["pred"]  # [1, H, N, F_out]
                res["full_forward_seconds"] = time.perf_counter() - t0
            res["full_forward_shape"] = list(pred.shape)
    res["peak_bytes"] = _peak_rss()
    return res


# ============================================================================ the driver
def run_child(job: dict, timeout: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(job)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"model": job["label"], "status": "timeout", "message": f"over {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"model": job["label"], "status": "failed", "returncode": proc.returncode, "message": " | ".join(tail)}
    res = json.loads(lines[-1][len("RESULT "):])
    res["wall_seconds"] = time.perf_counter() - t0
    return res


def jobs_for(n: int, quick: bool) -> list[dict]:
    jobs = [{"label": "stid", "model": "stid", "batch": STUDENT_BATCH, "kind": "epoch"}]
    for t in TEACHERS:
        slow = t in ("staeformer", "agcrn") and n >= 5000  # O(N^2) compute: one step is enough to time
        jobs.append({"label": t, "model": t, "batch": TEACHER_BATCH, "kind": "steps",
                     "max_steps": 2 if quick else 4, "min_steps": 1 if slow else 2, "budget_s": 25.0})
    if n >= 5000:
        jobs.append({"label": f"gwnet, node subsets K={SUBSET_NODES}", "model": "gwnet", "params": {"adaptive": False},
                     "batch": TEACHER_BATCH, "kind": "subset", "subset": SUBSET_NODES, "max_steps": 5,
                     "min_steps": 3, "budget_s": 20.0})
    return jobs


def preflight_year(adjacency) -> list[dict]:
    """The guard's verdict for a year of 5-minute data at 20,000 sensors (no data is made)."""
    from stkd.memory import MemoryLimitError, available_bytes, check_fits, estimate_memory
    from stkd.models.base import ModelSpec

    T = 365 * 288
    spec = ModelSpec(num_nodes=adjacency.shape[0], input_len=12, horizon=12, in_features=1, out_features=1,
                     steps_per_day=288, adjacency=adjacency)
    rows = []
    for name, params, batch in (("stid", {}, STUDENT_BATCH), ("gwnet", {}, TEACHER_BATCH)):
        est = estimate_memory(name, spec, params, batch_size=batch, num_steps=T)
        verdict = {}
        for label, avail in (("this machine", None), ("24 GiB", 24 * GiB)):
            try:
                check_fits(name, spec, params, batch_size=batch, num_steps=T, available=avail)
                verdict[label] = "fits"
            except MemoryLimitError as e:
                verdict[label] = str(e)
        rows.append({"model": name, "N": spec.num_nodes, "T": T, "estimate_bytes": est.total_bytes,
                     "data_bytes": est.data_bytes, "verdict": verdict, "available": available_bytes()})
    return rows


def fmt_gib(b) -> str:
    return "n/a" if b is None else f"{b / GiB:.2f}"


def table(results: list[dict]) -> str:
    rows = ["| model | N | T (days) | batch | measured | wall s | CPU s | CPU µs per window x sensor | peak RSS GiB | "
            "guard estimate GiB | note |",
            "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in results:
        days = f"{r['T']} ({r['T'] / 288:.0f})" if "T" in r else "?"
        if r.get("status") != "ok":
            note = r.get("message", "")
            if r.get("status") == "too large":
                need = note.split("needs ~", 1)[1].split(" GiB", 1)[0]
                avail = note.split(" has ", 1)[1].split(" GiB", 1)[0]
                note = f"refused by the guard: needs ~{need} GiB, {avail} GiB available (message below)"
            elif r.get("status") == "refused":  # the model's own bound: the first sentence of its message
                note = "refused by the model: " + note.split(": ", 1)[-1].split(" Try ", 1)[0]
            rows.append(f"| {r['model']} | {r.get('N', '?')} | {days} | {r.get('batch', '')} | {r.get('status')} "
                        "| | | | "
                        f"{fmt_gib(r.get('peak_bytes'))} | {fmt_gib(r.get('estimate_bytes'))} | {note} |")
            continue
        n = r["N"] if r["kind"] != "subset" else min(r["N"], SUBSET_NODES)
        us = r["cpu_seconds"] / (r["windows"] * n) * 1e6
        if r["kind"] == "epoch":
            what = f"1 epoch, {r['windows']} windows"
            note = "whole epoch, last partial batch dropped"
        else:
            what = ("s/step, 1 step (incl. warm-up)" if r["steps"] == 1
                    else f"s/step, median of {r['steps'] - 1} after 1 warm-up")
            note = f"first step {r['first_step']:.1f} s"
            if r["kind"] == "subset":
                note += (f"; BFS sub-graph of {SUBSET_NODES} nodes per step; the trained weights then ran one "
                         f"forward over all {r['N']} nodes in {r['full_forward_seconds']:.1f} s")
        rows.append(f"| {r['model']} | {r['N']} | {days} | {r['batch']} | {what} | {r['seconds']:.2f} | "
                    f"{r['cpu_seconds']:.2f} | {us:.2f} | "
                    f"{fmt_gib(r['peak_bytes'])} | {fmt_gib(r['estimate_bytes'])} | {note} |")
    return "\n".join(rows)


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"stid": ("C0", "o"), "gwnet": ("C1", "s"), "staeformer": ("C2", "^"), "agcrn": ("C3", "D"),
              f"gwnet, node subsets K={SUBSET_NODES}": ("C4", "v")}
    for label, (color, marker) in styles.items():
        ok = [r for r in results if r["model"] == label and r.get("status") == "ok"]
        refused = [r for r in results if r["model"] == label and r.get("status") == "too large"]
        if ok:
            ns = [r["N"] for r in ok]
            per_window = [r["cpu_seconds"] / r["windows"] for r in ok]
            ax1.plot(ns, per_window, marker=marker, color=color, label=label)
            ax2.plot(ns, [r["peak_bytes"] / GiB for r in ok], marker=marker, color=color, label=label)
            ax2.plot(ns, [r["estimate_bytes"] / GiB for r in ok], marker=marker, color=color, ls=":",
                     mfc="none", alpha=0.7)
        if refused:
            ax2.scatter([r["N"] for r in refused], [r["estimate_bytes"] / GiB for r in refused], marker="x",
                        color=color, s=60, label=f"{label}: refused (guard estimate)")
    stid = [r for r in results if r["model"] == "stid" and r.get("status") == "ok"]
    if stid:
        n0, s0 = stid[-1]["N"], stid[-1]["cpu_seconds"] / stid[-1]["windows"]
        xs = np.array([min(r["N"] for r in stid), max(r["N"] for r in stid)])
        ax1.plot(xs, s0 * xs / n0, color="grey", ls="--", lw=1, label="linear in N (through stid at the largest N)")
    ax2.axhline(24, color="k", ls="--", lw=1, label="24 GiB target")
    ax1.set(xscale="log", yscale="log", xlabel="sensors N", ylabel="CPU seconds per training window (1 thread)",
            title="Training time (student: whole epoch; teachers: steps)")
    ax2.set(xscale="log", yscale="log", xlabel="sensors N", ylabel="GiB",
            title="Peak memory (solid: measured RSS; dotted: guard estimate)")
    for ax in (ax1, ax2):
        ax.grid(True, which="both", alpha=0.3)
    ax1.legend(fontsize=7, loc="upper left")
    ax2.legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def render(result: dict) -> str:
    results = sorted(result["results"], key=lambda r: r.get("N") or 0)  # stable: the jobs' order within an N
    year = result.get("year") or []
    threads = result.get("args", {}).get("threads", 1)
    loads = [r["load_average"] for r in results if r.get("load_average") is not None]
    minutes = sum(r.get("wall_seconds", 0.0) for r in results) / 60
    stid = [r for r in results if r["model"] == "stid" and r.get("status") == "ok"]
    lines = ["### Scale: time and memory against the number of sensors", "",
             f"Command{'s' if len(commands(result)) > 1 else ''}: {'; '.join(f'`{c}`' for c in commands(result))} "
             f"({minutes:.1f} min of measurements; load average {min(loads, default=0):.1f}-{max(loads, default=0):.1f} "
             f"at their starts, on {result['cpus']} cores shared with other sessions)  ",
             machine_line(result), "",
             f"Each measurement uses {threads} torch thread{'s' if threads != 1 else ''}; wall seconds depend on what else runs, "
             "so the CPU seconds of the measuring process (`time.process_time`) are the ones to compare across "
             "rows.", "",
             "Data: the road-network simulator (`builtin: synthetic-traffic`), 5-minute speeds, 12 in / 12 out, "
             "70/10/20 split; T per row below (days were chosen so the whole benchmark fits in ~15 minutes of "
             "this CPU: the student's epoch is linear in windows x N, so a longer series costs proportionally "
             "more time, not more model memory). Each (model, N) ran in a fresh subprocess; peak RSS is its "
             "`ru_maxrss` (Python + torch + data + prepared copy + model). The guard estimate is "
             "`stkd.memory.estimate_memory` for the same run, including data and runtime.", "",
             table(results), "", "![scale](img/scale.png)", ""]
    refused = [r for r in results if r.get("status") == "too large"]
    if refused:
        lines += ["The guard's message, e.g. for " + f"{refused[0]['model']} at N = {refused[0]['N']}:", "",
                  "```", refused[0]["message"], "```", ""]
    if len(stid) >= 2:
        per = [r["cpu_seconds"] / r["windows"] for r in stid]
        steps = "; ".join(f"{a['N']} -> {b['N']} sensors ({b['N'] / a['N']:.0f}x): {pb / pa:.1f}x"
                          for a, b, pa, pb in zip(stid, stid[1:], per, per[1:]))
        us = ", ".join(f"{r['cpu_seconds'] / (r['windows'] * r['N']) * 1e6:.1f}" for r in stid)
        ns = ", ".join(f"{r['N']:,}" for r in stid)
        lines.append(f"Student (STID) CPU seconds per training window as N grows: {steps}. Per window and sensor: "
                     f"{us} µs at N = {ns} (flat = linear in N). One `[32, N, 64]` float32 activation of the "
                     f"student is {32 * stid[0]['N'] * 64 * 4 / 2**20:.1f} MiB at N = {stid[0]['N']:,} and "
                     f"{32 * stid[-1]['N'] * 64 * 4 / 2**20:.0f} MiB at N = {stid[-1]['N']:,}: small networks run "
                     "from the CPU caches, large ones from main memory, where the cost per sensor is constant.")
        lines.append("")
    if year:
        lines.append("Pre-flight only (no data made): a year of 5-minute data (T = 105,120) at 20,000 sensors.")
        lines.append("")
        lines.append("| model | guard estimate GiB | of which data | this machine | a 24 GiB machine |")
        lines.append("| --- | ---: | ---: | --- | --- |")
        for r in year:
            v = r["verdict"]
            cell = lambda s: "fits" if s == "fits" else "refused: " + s.split("; try ", 1)[-1]  # noqa: E731
            lines.append(f"| {r['model']} | {fmt_gib(r['estimate_bytes'])} | {fmt_gib(r['data_bytes'])} | "
                         f"{cell(v['this machine'])} | {cell(v['24 GiB'])} |")
        lines.append("")
    lines.append("How the guard estimates, which models scale how, and node-subset training: [scale.md](scale.md).")
    return "\n".join(lines) + "\n"


def commands(result: dict) -> list[str]:
    return sorted({r.get("command", result["command"]) for r in result["results"]})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="N = 200 and 1,000 only, fewer days and steps; nothing saved")
    ap.add_argument("--nodes", type=int, nargs="*", help="only these N (default: 200 1000 5000 20000)")
    ap.add_argument("--days", type=int, help="days of data for every N (default: per N, see DAYS)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads per measurement (1: robust on a shared machine)")
    ap.add_argument("--timeout", type=float, default=420.0, help="seconds per measurement before it is abandoned")
    ap.add_argument("--redo", action="store_true", help="measure again what docs/results/scale.json already holds")
    ap.add_argument("--report-only", action="store_true",
                    help="redraw the plot from docs/results/scale.json without measuring again")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(json.loads(args.child))), flush=True)
        return

    path = RESULTS / f"{SECTION}.json"
    if args.report_only:
        plot(json.loads(path.read_text())["results"], IMG)
        print(f"redrew {IMG.relative_to(REPO)} from {path.relative_to(REPO)}")
        return

    from stkd.config import SimulatorConfig
    from stkd.data.simulator import simulate_traffic

    plan = QUICK_DAYS if args.quick else DAYS
    if args.nodes:
        plan = {n: DAYS.get(n, 7) for n in args.nodes}
    if args.days:
        plan = {n: args.days for n in plan}
    old = json.loads(path.read_text()) if path.is_file() and not (args.quick or args.redo) else {}
    results, year = old.get("results", []), old.get("year", [])
    done = {(r["model"], r.get("N")) for r in results if r.get("status") in ("ok", "too large", "refused")}
    run_args = {k: v for k, v in vars(args).items() if k != "child"}

    def save() -> None:
        if not args.quick:
            save_result(SECTION, "scale", {"results": results, "year": year, "cpus": os.cpu_count()}, run_args)
            plot(results, IMG)

    with tempfile.TemporaryDirectory() as tmp:
        for n, days in plan.items():
            jobs = [j for j in jobs_for(n, args.quick) if (j["label"], n) not in done]
            want_year = n == max(plan) and not args.quick and (not year or args.redo)
            if not jobs and not want_year:
                continue
            t0 = time.perf_counter()
            data = simulate_traffic(SimulatorConfig(nodes=n, days=days, seed=0))
            data_path = Path(tmp) / f"data-{n}.pkl"
            with open(data_path, "wb") as fh:
                pickle.dump(data, fh, protocol=pickle.HIGHEST_PROTOCOL)
            print(f"N={n}: simulated {days} days (T={data.num_steps}) in {time.perf_counter() - t0:.1f} s", flush=True)
            if want_year:
                year = preflight_year(data.adjacency)
            del data
            for job in jobs:
                job["data"] = str(data_path)
                job["threads"] = args.threads
                load = os.getloadavg()[0]
                res = run_child(job, args.timeout)
                res.setdefault("N", n)
                res.update(load_average=load, command=command())
                results = [r for r in results if (r["model"], r.get("N")) != (res["model"], n)] + [res]
                shown = {k: v for k, v in res.items() if k not in ("message",)}
                print(json.dumps(shown), flush=True)
                if res.get("message"):
                    print("   ", res["message"][:400], flush=True)
                save()
    save()
    if args.quick:
        print(render({"results": results, "year": year, "cpus": os.cpu_count(), "command": command(),
                      "machine": "this machine", "versions": {"stkd": "", "commit": ""}, "date": "today"}))
    else:
        print(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
