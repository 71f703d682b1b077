"""Load on the forecasting service: requests/s and p50/p99 latency of the student and the teacher.

    python benchmarks/serve_load.py RUN_DIR [--requests 2000] [--seconds 30]

For each served model (the run's distilled student on onnxruntime and on PyTorch, and its teacher on
PyTorch) the script starts ``stkd serve`` with uvicorn in a subprocess on 127.0.0.1 and a free port,
then drives it from a separate client process over loopback, one request at a time (batch 1,
keep-alive HTTP/1.1), bounded by ``--requests`` and ``--seconds`` per scenario:

- ``/predict``: a stateless forecast from a whole window of held-out (test split) readings;
- ``/observations + /forecast``: post the readings of the next step for every node, then get the
  forecast (one cycle = both requests; the window is advanced by one step each cycle).

Only loopback traffic; the server is stopped at the end. Results go to ``docs/results/serve.json``
(``--no-write``: printed only); ``python benchmarks/render.py`` turns them into markdown with :func:`render`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


# =============================================================================== client side
def _request(conn, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    return r.status, data


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process (Linux /proc), 0 where unknown."""
    if not pid:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def drive(url: str, payload_file: str, requests: int, seconds: float, warmup: int = 20,
          server_pid: int | None = None) -> dict:
    """The client process: run both scenarios against ``url`` and return their numbers.

    Besides wall-clock latency it records the server's CPU time per request, which other work on a
    shared machine does not inflate (much)."""
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    pl = json.loads(Path(payload_file).read_text())
    hdr = {"Content-Type": "application/json"}
    out = {}

    # --- /predict
    bodies = [json.dumps(b).encode() for b in pl["predict"]]
    lat, t_end, n, errors = [], None, 0, 0
    for i in range(warmup):
        _request(conn, "POST", "/predict", bodies[i % len(bodies)], hdr)
    cpu0 = cpu_seconds(server_pid)
    t0 = time.perf_counter()
    while n < requests and time.perf_counter() - t0 < seconds:
        s = time.perf_counter()
        status, _ = _request(conn, "POST", "/predict", bodies[n % len(bodies)], hdr)
        lat.append(time.perf_counter() - s)
        errors += status != 200
        n += 1
    t_end = time.perf_counter() - t0
    out["predict"] = _summary(lat, t_end, errors)
    out["predict"]["server_cpu_ms"] = 1000.0 * (cpu_seconds(server_pid) - cpu0) / max(n, 1)

    # --- /observations + /forecast
    steps = pl["steps"]  # [{"timestamp", "readings"}] consecutive
    posts = [json.dumps(s).encode() for s in steps]
    k = 0
    for _ in range(max(warmup, pl.get("history", pl["input_len"]))):  # fill the window first (back to a lag)
        _request(conn, "POST", "/observations", posts[k], hdr)
        k += 1
    lat, lat_obs, lat_fc, n, errors = [], [], [], 0, 0
    cpu0 = cpu_seconds(server_pid)
    t0 = time.perf_counter()
    while n < requests // 2 and k < len(posts) and time.perf_counter() - t0 < seconds:
        s = time.perf_counter()
        st1, _ = _request(conn, "POST", "/observations", posts[k], hdr)
        m = time.perf_counter()
        st2, _ = _request(conn, "GET", "/forecast")
        e = time.perf_counter()
        lat.append(e - s)
        lat_obs.append(m - s)
        lat_fc.append(e - m)
        errors += (st1 != 200) + (st2 != 200)
        n += 1
        k += 1
    t_end = time.perf_counter() - t0
    cyc = _summary(lat, t_end, errors)
    cyc["requests_per_s"] = 2 * n / t_end if t_end else 0.0  # two requests a cycle
    cyc["obs_p50_ms"] = _pct(lat_obs, 50)
    cyc["forecast_p50_ms"] = _pct(lat_fc, 50)
    cyc["server_cpu_ms"] = 1000.0 * (cpu_seconds(server_pid) - cpu0) / max(n, 1)  # per cycle
    out["cycle"] = cyc
    return out


def _pct(xs, q) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    i = min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))
    return 1000.0 * s[i]


def _summary(lat, elapsed, errors) -> dict:
    return {"n": len(lat), "seconds": elapsed, "requests_per_s": len(lat) / elapsed if elapsed else 0.0,
            "p50_ms": _pct(lat, 50), "p99_ms": _pct(lat, 99),
            "mean_ms": 1000.0 * statistics.fmean(lat) if lat else float("nan"), "errors": int(errors)}


# =============================================================================== server side
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(port: int, proc, timeout: float = 300.0, poll: float = 0.5) -> None:
    """Until ``GET /health`` on ``port`` answers 200; ``poll``: seconds between tries (the start-up time a
    caller measures is known to within it)."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            if _request(conn, "GET", "/health")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(poll)
    raise RuntimeError("the server did not come up in time")


def payloads(run_dir: Path, steps_needed: int, windows: int = 64, history: int | None = None) -> dict:
    """Held-out readings: /predict bodies and consecutive /observations posts (test split). ``history``: the
    steps a served model reads (its ``history_len``: the window, and back to its longest lag for a model that
    reads lagged inputs); each /predict body carries that many, and the rolling window is filled with as many
    posts before the cycles are timed. Default: the run's input window."""
    import numpy as np

    from stkd.data.loaders import load_data
    from stkd.runs import load_run

    cfg, info = load_run(run_dir)
    data = load_data(cfg.data)
    P = int(info["input_len"])
    L = int(history or P)
    lo = int(info["splits"]["test"][0])
    nodes = data.nodes

    def reading(v):
        return None if np.isnan(v) else round(float(v), 4)

    predict = []
    for s in np.linspace(lo, data.num_steps - L, windows).astype(int):
        predict.append({"end": str(data.index[s + L - 1]),
                        "values": {n: [reading(v) for v in data.values[s:s + L, i, 0]] for i, n in enumerate(nodes)}})
    steps = []
    for t in range(lo, min(data.num_steps, lo + steps_needed)):
        steps.append({"timestamp": str(data.index[t]),
                      "readings": {n: reading(data.values[t, i, 0]) for i, n in enumerate(nodes)}})
    return {"predict": predict, "steps": steps, "input_len": P, "history": L, "nodes": len(nodes), "name": info.get("name", "?"),
            "freq": info.get("freq", "?")}


def bench_one(run_dir: Path, model: str, backend: str, threads: int, payload_file: Path, requests: int,
              seconds: float) -> dict:
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "stkd", "serve", str(run_dir), "--port", str(port), "--model", model,
           "--backend", backend, "--threads", str(threads), "--log-level", "warning",
           "--state", str(payload_file.with_name(f"state-{model}-{backend}.sqlite"))]
    log = open(payload_file.with_name(f"server-{model}-{backend}.log"), "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        t0 = time.time()
        try:
            wait_up(port, proc)
        except RuntimeError as e:
            log.flush()
            raise RuntimeError(f"{e}: {Path(log.name).read_text()[-2000:]}") from None
        startup = time.time() - t0
        client = subprocess.run([sys.executable, __file__, "--drive", f"http://127.0.0.1:{port}",
                                 "--payloads", str(payload_file), "--requests", str(requests),
                                 "--seconds", str(seconds), "--server-pid", str(proc.pid)], capture_output=True,
                                text=True,
                                timeout=4 * seconds + 120)
        if client.returncode != 0:
            raise RuntimeError(f"client failed: {client.stderr[-2000:]}")
        res = json.loads(client.stdout.strip().splitlines()[-1])
        res["startup_s"] = startup
        return res
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", nargs="?")
    ap.add_argument("--student", help="student model name (default: the run's distilled student)")
    ap.add_argument("--teacher", help="teacher model name (default: the run's first teacher)")
    ap.add_argument("--requests", type=int, default=2000, help="max requests per scenario")
    ap.add_argument("--seconds", type=float, default=30.0, help="max seconds per scenario")
    ap.add_argument("--threads", type=int, default=1, help="model threads in the server (the client takes a core)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not write docs/results/serve.json")
    ap.add_argument("--note", help="how RUN_DIR was made (printed under the command)")
    ap.add_argument("--drive", help=argparse.SUPPRESS)
    ap.add_argument("--payloads", help=argparse.SUPPRESS)
    ap.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.drive:
        print(json.dumps(drive(args.drive, args.payloads, args.requests, args.seconds, server_pid=args.server_pid)))
        return 0
    if not args.run_dir:
        ap.error("RUN_DIR is required")

    from common import command, machine, save_result, versions
    from stkd.deploy.loading import choose_model, list_models, load
    from stkd.models.base import count_params
    from stkd.runs import linked_teacher_run

    run_dir = Path(args.run_dir)
    cards = list_models(run_dir)
    student = args.student or choose_model(run_dir)[0]
    # the teacher: in the run itself, else in the run a `stkd distill` run was distilled from
    teacher_dir = run_dir
    teacher = args.teacher or next((n for n, c in cards.items() if c.get("role") == "teacher"), None)
    if teacher is None and (linked := linked_teacher_run(run_dir)) is not None:
        linked_cards = list_models(linked)
        teacher_dir, cards = linked, {**linked_cards, **cards}
        teacher = next((n for n, c in linked_cards.items() if c.get("role") == "teacher"), None)
    tmp = Path(tempfile.mkdtemp(prefix="stkd-serve-bench-"))
    try:
        runs = [(run_dir, student, "onnx"), (run_dir, student, "torch")]
        runs += [(teacher_dir, teacher, "torch")] if teacher else []
        predictors = {(where, model): load(where, model) for where, model, _ in runs}
        params = {key: count_params(p.model) for key, p in predictors.items()}
        history = {key: int(p.history_len) for key, p in predictors.items()}  # a lag-reading model reads more
        pfiles = {}
        for L in sorted(set(history.values())):  # one set of payloads per history length
            pl = payloads(run_dir, steps_needed=args.requests // 2 + 100 + L, history=L)
            pfiles[L] = tmp / f"payloads-{L}.json"
            pfiles[L].write_text(json.dumps(pl))
        results = []
        load_before = os.getloadavg()
        for where, model, backend in runs:
            print(f"serving {model} ({backend}) ...", flush=True)
            r = bench_one(where, model, backend, args.threads, pfiles[history[where, model]], args.requests,
                          args.seconds)
            r["history_len"] = history[where, model]
            results.append((model, backend, params[where, model], r))
            print(f"  /predict {r['predict']['requests_per_s']:.1f} req/s p50 {r['predict']['p50_ms']:.2f} ms "
                  f"p99 {r['predict']['p99_ms']:.2f} ms; obs+forecast {r['cycle']['requests_per_s']:.1f} req/s "
                  f"p50 {r['cycle']['p50_ms']:.2f} ms p99 {r['cycle']['p99_ms']:.2f} ms", flush=True)
        load_after = os.getloadavg()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    payload = {"dataset": {"name": pl["name"], "freq": pl["freq"], "nodes": pl["nodes"], "input_len": pl["input_len"]},
               "threads": args.threads, "requests": args.requests, "seconds": args.seconds, "note": args.note,
               "results": [{"model": model, "backend": backend, "role": cards.get(model, {}).get("role", "?"),
                            "params": params, **r} for model, backend, params, r in results],
               "teacher": teacher, "load_before": load_before[0], "load_after": load_after[0],
               "cpus": os.cpu_count()}
    run_args = {k: v for k, v in vars(args).items() if k not in ("run_dir", "drive", "payloads", "server_pid")}
    if args.no_write:
        import datetime

        print(render({**payload, "command": command(), "machine": machine(), "versions": versions(),
                      "date": datetime.date.today().isoformat(), "args": run_args}))
    else:
        path = save_result("serve", "serve_load", payload, run_args)
        print(render(json.loads(path.read_text())))
    return 0


def render(result: dict) -> str:
    from common import machine_line

    ds = result["dataset"]
    lines = [
        "### Serving: requests per second and latency at batch 1",
        "",
        f"Command: `{result['command']}`  ",
        machine_line(result),
        "",
        *([result["note"], ""] if result.get("note") else []),
        f"Data set {ds['name']} ({ds['nodes']} nodes, {ds['input_len']} input steps, freq {ds['freq']}); `stkd serve` "
        f"(uvicorn, one worker, `--threads {result['threads']}`) on 127.0.0.1, driven from a separate client "
        "process, one request at a time over a keep-alive connection (the rolling window saved to a state file "
        f"after each post, as by default), at most {result['requests']} requests or {result['seconds']:g} s per "
        "scenario. `/predict` sends a whole held-out window (every node, the steps the model reads: P, or back "
        "to its longest lag); a cycle is "
        "`POST /observations` (one step, every node) + `GET /forecast`, and its req/s counts both requests. "
        "Server CPU ms: the server process's CPU time per request (per cycle), which other load on the machine "
        "does not inflate much.",
        "",
        "| model | role | params | steps read | backend | /predict req/s | p50 ms | p99 ms | server CPU ms | "
        "obs+forecast req/s | cycle p50 ms | cycle p99 ms | server CPU ms | errors |",
        "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["results"]:
        p, c = r["predict"], r["cycle"]
        params = f"{r['params']:,}" if r["params"] is not None else "?"
        lines.append(f"| {r['model']} | {r['role']} | {params} | {r.get('history_len', ds['input_len'])} | "
                     f"{r['backend']} | "
                     f"{p['requests_per_s']:.0f} | {p['p50_ms']:.2f} | {p['p99_ms']:.2f} | {p['server_cpu_ms']:.2f} | "
                     f"{c['requests_per_s']:.0f} | {c['p50_ms']:.2f} | {c['p99_ms']:.2f} | {c['server_cpu_ms']:.2f} | "
                     f"{p['errors'] + c['errors']} |")
    teacher = next((r for r in result["results"] if r["model"] == result.get("teacher")), None)
    if teacher is not None:
        t = teacher
        verdict = []
        for r in result["results"]:
            if r is teacher:
                continue
            ratio = r["predict"]["requests_per_s"] / max(t["predict"]["requests_per_s"], 1e-9)
            ratio_c = r["cycle"]["requests_per_s"] / max(t["cycle"]["requests_per_s"], 1e-9)
            cpu = t["predict"]["server_cpu_ms"] / max(r["predict"]["server_cpu_ms"], 1e-9)
            met = ("meets" if min(ratio, ratio_c) >= 10 and max(r["predict"]["p99_ms"], r["cycle"]["p99_ms"]) < 20
                   else "does not meet")
            verdict.append(f"- {r['model']} ({r['backend']}) serves {ratio:.1f}x the teacher's /predict requests/s "
                           f"and {ratio_c:.1f}x its observation+forecast cycles, with {cpu:.1f}x less server CPU per "
                           f"/predict; its p99 is {r['predict']['p99_ms']:.1f} ms (/predict) and "
                           f"{r['cycle']['p99_ms']:.1f} ms (cycle): it {met} the target (>= 10x the teacher's "
                           "requests/s, p99 < 20 ms).")
        lines += ["", *verdict]
    lines += ["", f"Machine load average (1 min) {result['load_before']:.1f} before and {result['load_after']:.1f} "
                  f"after the run on {result['cpus']} cores: other work on a shared machine takes CPU from the "
                  "server, so these numbers are a lower bound for a dedicated machine."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
