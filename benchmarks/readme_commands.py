"""The README's commands, each timed as a newcomer runs them one after the other: quick start, data, deploy.

    python benchmarks/readme_commands.py     # writes docs/results/readme-commands.json (about 13 minutes)

In a fresh temporary folder it runs ``stkd --help``, ``stkd run --out runs/quickstart`` (the default
preset), ``stkd data inspect``, the deploy section's ``stkd data query`` (eight days), ``stkd predict``,
``stkd export`` and the quick start's ``stkd distill --seeds``, each as its own process through the ``stkd`` entry point beside this Python; then
``stkd serve`` until ``/health`` answers, and the README's week of hourly ``POST /observations`` followed
by ``GET /forecast`` (sent from here with urllib where the README uses curl: the same requests). Any
command that fails, or a forecast the service does not give, stops the script with what happened.
The README's timing table is rendered from the result file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from common import save_result
from default_run import wall_time
from serve_load import free_port, wait_up

SECTION = "readme-commands"
QUERY = ["--start", "2025-12-24 00:00", "--end", "2025-12-31 23:00"]  # the README's eight days
# the README's serve example: two counters' readings for each hour of the first week of 2026
POSTED = [(f"2026-01-0{d} {h:02d}:00", {"1 Courthouse Lane": 12, "2 High Street": 30})
          for d in range(1, 8) for h in range(24)]
# command as the README writes it -> what the table says beside it
COMMANDS = [
    ("stkd --help", ["--help"], ""),
    ("stkd run --out runs/quickstart", ["run", "--out", "runs/quickstart", "--quiet"], "the default preset, full training"),
    ("stkd data inspect akl-pedestrians", ["data", "inspect", "akl-pedestrians"], ""),
    ("stkd data query akl-pedestrians --start .. --end .. --out recent.csv",
     ["data", "query", "akl-pedestrians", *QUERY, "--out", "recent.csv"], "8 days, 21 sensors"),
    ("stkd predict runs/quickstart --input recent.csv --out forecasts.csv",
     ["predict", "runs/quickstart", "--input", "recent.csv", "--out", "forecasts.csv"], ""),
    ("stkd export runs/quickstart --format onnx --out exported/",
     ["export", "runs/quickstart", "--format", "onnx", "--out", "exported/"], "with its check"),
    ("stkd distill --teacher-run runs/quickstart --seeds 0 1 2 3 4 --out runs/seeds",
     ["distill", "--teacher-run", "runs/quickstart", "--seeds", "0", "1", "2", "3", "4", "--out", "runs/seeds",
      "--quiet"], "both students, 5 seeds"),
]


def seconds(s: float) -> str:
    """``0.14 s``, ``4.9 s``, ``4 min 36 s`` (from a minute on, as the default run's wall time)."""
    if s >= 60:
        return wall_time({"wall_seconds": s})
    return f"{s:.2f} s" if s < 1 else f"{s:.1f} s"


def timed(stkd: str, args: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    done = subprocess.run([stkd, *args], cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"stkd {' '.join(args)} failed with exit status {done.returncode}:\n{done.stderr[-2000:]}")
    return wall


def request(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def serve(stkd: str, cwd: Path) -> dict:
    """``stkd serve`` until ``/health`` answers, then the README's week of observations and one forecast."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = cwd / "serve.log"  # a file, not a pipe: the server's log never fills a buffer nobody reads
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen([stkd, "serve", "runs/quickstart", "--port", str(port)], cwd=cwd,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            wait_up(port, proc, poll=0.1)
        except RuntimeError as e:
            raise SystemExit(f"stkd serve: {e}:\n{log_path.read_text()[-2000:]}") from None
        up = time.perf_counter() - t0
        early, _ = request(f"{base}/forecast")  # before a week is held: no forecast yet
        t0 = time.perf_counter()
        for ts, readings in POSTED:
            status, body = request(f"{base}/observations", {"timestamp": ts, "readings": readings})
            if status != 200:
                raise SystemExit(f"POST /observations {ts} answered {status}: {body}")
        status, forecast = request(f"{base}/forecast")
        posted = time.perf_counter() - t0
        if status != 200:
            raise SystemExit(f"GET /forecast after a week of observations answered {status}: {forecast}")
        return {"health_seconds": up, "posts_seconds": posted, "posts": len(POSTED),
                "forecast_before_history": early, "forecast_issued_at": forecast["issued_at"],
                "forecast_model": forecast["model"]}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def render_table(result: dict) -> str:
    rows = ["| command | time |", "| --- | --- |"]
    for c in result["commands"]:
        note = c["note"]
        if c["readme"].startswith("stkd predict"):
            note = f"{c['forecast_times']} forecast times"
        rows.append(f"| `{c['readme']}`{f' ({note})' if note else ''} | {seconds(c['seconds'])} |")
    s = result["serve"]
    rows.append(f"| `stkd serve runs/quickstart` until `/health` answers | {seconds(s['health_seconds'])}; then "
                f"{s['posts']} `/observations` + `/forecast`: {seconds(s['posts_seconds'])} |")
    return "\n".join(rows)


def render(result: dict) -> str:
    return (f"### The README's commands, timed\n\nCommand: `{result['command']}`  \nMachine: {result['machine']}, "
            f"load average {result['load_before']:.1f} before the first command; stkd {result['versions']['stkd']} "
            f"(commit {result['versions']['commit']}), {result['date']}\n\n" + render_table(result) + "\n\n"
            f"`GET /forecast` answered {result['serve']['forecast_before_history']} before the week was posted, "
            f"and a forecast issued at {result['serve']['forecast_issued_at']} by "
            f"`{result['serve']['forecast_model']}` after it.\n")


def headline(result: dict) -> str:
    """The README's timing table (its suite row is the CI's, outside the block)."""
    return (f"Measured by `{result['command']}` ({result['date']}, load average {result['load_before']:.1f} before "
            f"the first command):\n\n" + render_table(result))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.parse_args()
    stkd = str(Path(sys.executable).with_name("stkd"))  # the entry point a user's shell finds in the venv
    load_before = os.getloadavg()[0]
    commands = []
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        for readme, args, note in COMMANDS:
            row = {"readme": readme, "note": note, "seconds": timed(stkd, args, cwd)}
            if args[0] == "predict":
                import pandas as pd

                row["forecast_times"] = int(pd.read_csv(cwd / "forecasts.csv")["issued_at"].nunique())
            commands.append(row)
            print(f"{seconds(row['seconds']):>12}  {readme}", flush=True)
        served = serve(stkd, cwd)
    save_result(SECTION, "readme_commands", {"load_before": load_before, "commands": commands, "serve": served})
    print(render_table({"commands": commands, "serve": served}))


if __name__ == "__main__":
    main()
