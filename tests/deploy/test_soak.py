"""A real ``stkd serve`` (uvicorn in a subprocess on 127.0.0.1) under honest and hostile clients at once.

The soak test posts readings from several threads while a hostile client sends bad JSON, huge bodies,
future and out-of-range timestamps, wrong tokens and duplicates; a separate thread times ``/health``
throughout. Then the server is killed (SIGKILL: a crash, not a clean stop) and started again, and the
state file must hold every reading that was acknowledged (200), each exactly once (issue 17).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import stkd
from stkd.deploy.state import WindowStore

SRC = str(Path(stkd.__file__).resolve().parents[1])
TOKEN = "soak-token"
HEALTH_LIMIT_S = 0.1


class Server:
    """``python -m stkd serve ARGS`` on 127.0.0.1 and a port the OS picks (read from uvicorn's log)."""

    def __init__(self, run_dir: Path, log: Path, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
        env.pop("STKD_API_TOKEN", None)
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stkd", "serve", str(run_dir), "--port", "0", "--threads", "1",
             "--log-level", "info", *args],
            stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", log.read_text())
            if found:
                self.port = int(found.group(1))
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"stkd serve exited ({self.proc.returncode}):\n{log.read_text()}")
            time.sleep(0.1)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"stkd serve did not start:\n{log.read_text()}")

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                timeout: float = 10.0) -> tuple[int, dict | None]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
            r = conn.getresponse()
            raw = r.read()
            try:
                return r.status, json.loads(raw) if raw else None
            except ValueError:
                return r.status, None
        finally:
            conn.close()

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)


class HealthProbe(threading.Thread):
    """GET /health every 20 ms over one kept-alive connection; records each answer's latency and status."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port, self.latencies, self.statuses = port, [], []
        self.done = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        while not self.done.is_set():
            began = time.perf_counter()
            conn.request("GET", "/health")
            r = conn.getresponse()
            body = json.loads(r.read())
            self.latencies.append(time.perf_counter() - began)
            self.statuses.append((r.status, body["status"]))
            time.sleep(0.02)
        conn.close()


def observation(data, t: int, nodes, timestamp: str | None = None) -> bytes:
    readings = {data.nodes[i]: (None if np.isnan(v := float(data.values[t, i, 0])) else v) for i in nodes}
    return json.dumps({"timestamp": timestamp or str(data.index[t]), "readings": readings}).encode()


AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.slow
def test_soak_every_acknowledged_reading_survives_a_crash(run_dir, prepared, tmp_path):
    data, wd = prepared
    t0 = int(wd.starts["test"][0])
    steps = 20  # within the window the service keeps (2 P = 24 steps): every reading stays individually
    groups = [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]  # each honest client owns some nodes
    acked: dict[tuple[int, int], float] = {}  # (step, node) -> value, for every 200
    lock = threading.Lock()
    problems: list[str] = []

    now = pd.Timestamp.now().floor("5min")
    huge = json.dumps({"end": str(data.index[t0]), "values": {n: [1.0] * 12 for n in data.nodes},
                       "nodes": [f"{i:x}" for i in range(600_000)]}, separators=(",", ":")).encode()
    attacks = [  # built before any thread starts: json.dumps of 600,000 names holds this process's GIL
        ("POST", "/observations", b'{"timestamp": "2012-03-02 00:00", "readings": {', AUTH, {422}),
        ("POST", "/observations", observation(data, t0, [0], "2262-04-10 00:00"), AUTH, {422}),
        ("POST", "/observations", observation(data, t0, [0], str(now + pd.Timedelta("3h"))), AUTH, {422}),
        ("POST", "/observations", observation(data, t0, [0], "1500-01-01 00:00"), AUTH, {422}),
        ("POST", "/observations", observation(data, t0 + 5, [1]), {"Authorization": "Bearer wrong"}, {401}),
        ("POST", "/observations", observation(data, t0 + 5, [1]), {}, {401}),
        ("POST", "/predict", huge, AUTH, {413}),
        ("POST", "/observations", b"[" * 100_000, AUTH, {413}),
        ("POST", "/admin/reset", b"", {"Authorization": "Bearer wrong"}, {401}),
        ("POST", "/observations", observation(data, t0, [0]), AUTH, {200, 409}),  # a replay
    ]

    server = Server(run_dir, tmp_path / "serve-1.log", "--token", TOKEN)
    probe = HealthProbe(server.port)
    probe.start()
    try:
        def honest(nodes, lag: float) -> None:
            for k in range(steps):
                t = t0 + k
                status, body = server.request("POST", "/observations", observation(data, t, nodes), AUTH)
                if status == 200:
                    with lock:
                        for i in nodes:
                            assert (t, i) not in acked
                            acked[(t, i)] = float(data.values[t, i, 0])
                else:
                    problems.append(f"honest post of step {k} nodes {nodes}: {status} {body}")
                time.sleep(lag)

        def hostile() -> None:
            for _ in range(3):
                for method, path, body, headers, allowed in attacks:
                    status, reply = server.request(method, path, body, headers)
                    if status not in allowed:
                        problems.append(f"hostile {path} {body[:60]!r}: {status} {reply}")
                    if status == 200:  # the replay came first: it is an honest reading now
                        with lock:
                            assert (t0, 0) not in acked
                            acked[(t0, 0)] = float(data.values[t0, 0, 0])
                    time.sleep(0.01)

        threads = [threading.Thread(target=honest, args=(g, lag)) for g, lag in zip(groups, (0.0, 0.01, 0.02))]
        threads.append(threading.Thread(target=hostile))
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=120)
    finally:
        probe.done.set()
        probe.join(timeout=10)
        server.stop(signal.SIGKILL)  # a crash: nothing is flushed on the way out
    assert not problems, problems[:5]
    assert len(acked) == steps * len(data.nodes)
    assert max(probe.latencies) < HEALTH_LIMIT_S, sorted(probe.latencies)[-5:]
    assert {s for s in probe.statuses} == {(200, "ok")}

    server = Server(run_dir, tmp_path / "serve-2.log", "--token", TOKEN)
    try:
        status, meta = server.request("GET", "/metadata")
        assert meta["window"]["latest"] == data.index[t0 + steps - 1].isoformat() and meta["window"]["ready"]
        assert server.request("GET", "/forecast")[0] == 200
        for t, i, why in ((t0 + 3, 2, "out of order"), (t0 + steps - 1, 9, "duplicate")):  # acknowledged before
            status, body = server.request("POST", "/observations", observation(data, t, [i]), AUTH)
            assert status == 409 and why in body["detail"], body
    finally:
        server.stop()  # a clean stop releases the state file

    s = prepared[1]
    store = WindowStore(run_dir / "deploy" / "state-stid_kd.sqlite", "stid_kd", s.P, len(data.nodes), 1, data.nodes)
    w = store.load()
    store.close()
    stored = {(w.start + r, i) for r, i in zip(*np.nonzero(w.seen))}
    assert stored == set(acked)  # every acknowledged reading, and nothing else: each exactly once
    for (t, i), v in acked.items():
        got = w.values[t - w.start, i, 0]
        assert (np.isnan(v) and np.isnan(got)) or got == np.float32(v), (t, i, got, v)


@pytest.mark.slow
def test_a_huge_request_does_not_stall_health(run_dir, prepared, tmp_path):
    """/predict with 600,000 node names used to take 3.5 s and stall /health for 3 s."""
    data, wd = prepared
    server = Server(run_dir, tmp_path / "serve.log", "--no-persist")
    probe = HealthProbe(server.port)
    huge = json.dumps({"end": str(data.index[100]), "values": {n: [1.0] * 12 for n in data.nodes},
                       "nodes": [f"{i:x}" for i in range(600_000)]}, separators=(",", ":")).encode()
    try:
        probe.start()
        time.sleep(0.3)
        results = []

        def fire() -> None:
            began = time.perf_counter()
            results.append((*server.request("POST", "/predict", huge), time.perf_counter() - began))

        shots = [threading.Thread(target=fire) for _ in range(3)]
        for th in shots:
            th.start()
        for th in shots:
            th.join(timeout=30)
        time.sleep(0.3)
    finally:
        probe.done.set()
        probe.join(timeout=10)
        server.stop()
    assert len(results) == 3
    for status, body, took in results:
        assert status == 413 and "10 nodes x 12 steps" in body["detail"], body
        assert took < 1.0, took
    assert len(probe.latencies) > 10 and max(probe.latencies) < HEALTH_LIMIT_S, sorted(probe.latencies)[-5:]
