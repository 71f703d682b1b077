"""Issue 17's attacks on the service, in process: each test is a way the service stopped, lost or
corrupted data, and fails on the code before its fix."""

from __future__ import annotations

import json
import sqlite3
import time
import warnings

import numpy as np
import pandas as pd
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's deprecation note about httpx
    from fastapi.testclient import TestClient

from stkd.deploy.serve import create_app
from stkd.errors import STKDError

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def readings(data, t: int, nodes=None) -> dict:
    idx = range(len(data.nodes)) if nodes is None else nodes
    return {data.nodes[i]: (None if np.isnan(v := float(data.values[t, i, 0])) else v) for i in idx}


def post(client, data, t: int, nodes=None, timestamp=None):
    ts = str(data.index[t]) if timestamp is None else timestamp
    return client.post("/observations", json={"timestamp": ts, "readings": readings(data, t, nodes)}, headers=AUTH)


@pytest.fixture
def client(run_dir):
    with TestClient(create_app(run_dir, "torch", token=TOKEN)) as c:
        yield c


def state_file(run_dir):
    return run_dir / "deploy" / "state-stid_kd.sqlite"


# ------------------------------------------------------------------ 1. one request stops the service
def test_a_far_future_timestamp_is_refused_and_does_not_block_real_readings(client, prepared):
    """POST 2262-04-10 used to be accepted; every real timestamp then got 409, across restarts."""
    data, wd = prepared
    t = int(wd.starts["test"][0])
    r = client.post("/observations", json={"timestamp": "2262-04-10 00:00", "readings": {data.nodes[0]: 1.0}},
                    headers=AUTH)
    assert r.status_code == 422 and "ahead of this server's clock" in r.json()["detail"], r.text
    assert "--max-clock-skew 0 days 01:00:00" in r.json()["detail"]
    assert post(client, data, t).status_code == 200


def test_a_device_clock_a_few_hours_ahead_is_refused(client, prepared):
    """Within the grid but 3 hours ahead of now (the server's local time: the data is naive)."""
    data, _ = prepared
    step = pd.Timedelta("5min")
    now = pd.Timestamp.now().floor("5min")
    assert post(client, data, 0, timestamp=str(now - step)).status_code == 200  # a correct clock
    r = post(client, data, 1, timestamp=str(now + pd.Timedelta("3h")))
    assert r.status_code == 422 and "ahead of this server's clock" in r.json()["detail"]
    assert post(client, data, 1, timestamp=str(now)).status_code == 200


def test_the_skew_is_configurable(run_dir, prepared):
    data, _ = prepared
    ahead = str(pd.Timestamp.now().floor("5min") + pd.Timedelta("3h"))
    with TestClient(create_app(run_dir, "torch", state_path=False, max_clock_skew="4h")) as c:
        assert post(c, data, 0, timestamp=ahead).status_code == 200
    with pytest.raises(STKDError, match="--max-clock-skew 'soon': not a duration"):
        create_app(run_dir, "torch", state_path=False, max_clock_skew="soon")


def test_a_timestamp_before_the_data_is_refused(client, prepared):
    data, wd = prepared
    r = post(client, data, 0, timestamp="2011-01-01 00:00")
    assert r.status_code == 422 and "before the model's data, which starts at 2012-03-01" in r.json()["detail"]
    assert client.get("/metadata").json()["window"]["latest"] is None


@pytest.mark.parametrize("year", ["1500", "9999"])
def test_a_timestamp_out_of_range_names_itself(client, prepared, year):
    """Years 1500 and 9999 were refused with a wrapped-around time (1500 -> 2084-07-20 23:34:33)."""
    data, _ = prepared
    r = post(client, data, 0, timestamp=f"{year}-01-01 00:00")
    assert r.status_code == 422
    assert f"{year}-01-01 00:00:00" in r.json()["detail"] and "outside the range" in r.json()["detail"]


def test_a_late_reading_of_one_node_is_accepted_after_another_nodes_later_one(client, prepared):
    """Node 1's reading of step t arrives after node 0 reported t + 1: it used to be refused (409)."""
    data, wd = prepared
    t = int(wd.starts["test"][0])
    assert post(client, data, t, nodes=[0]).status_code == 200
    assert post(client, data, t + 1, nodes=[0]).status_code == 200
    r = post(client, data, t, nodes=[1])
    assert r.status_code == 200, r.text
    assert post(client, data, t, nodes=[1]).status_code == 409  # but only once
    r = post(client, data, t, nodes=[0])
    assert r.status_code == 409 and "out of order" in r.json()["detail"]


def test_rollback_and_reset_are_authenticated_and_backed_up(client, run_dir, prepared):
    data, wd = prepared
    t0 = int(wd.starts["test"][0])
    for k in range(12):
        assert post(client, data, t0 + k).status_code == 200
    want = client.get("/forecast").json()
    for k in range(12, 15):
        assert post(client, data, t0 + k).status_code == 200
    assert client.get("/forecast").json() != want
    to = str(data.index[t0 + 11])
    assert client.post("/admin/rollback", params={"to": to}).status_code == 401
    assert client.post("/admin/rollback", params={"to": to}, headers={"X-API-Token": "nope"}).status_code == 401
    r = client.post("/admin/rollback", params={"to": to}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["dropped"] == 3 * len(data.nodes) and r.json()["latest"] == data.index[t0 + 11].isoformat()
    assert (run_dir / "deploy" / r.json()["backup"]).is_file()
    assert client.get("/forecast").json() == want  # exactly the window of 12 steps before
    assert post(client, data, t0 + 12).status_code == 200  # the dropped steps can be posted again
    r = client.post("/admin/reset", headers=AUTH)
    assert r.status_code == 200 and r.json()["latest"] is None and r.json()["window_steps"] == 0
    assert client.get("/forecast").status_code == 409
    # without a token the admin endpoints are off
    with TestClient(create_app(run_dir, "torch", state_path=False)) as c:
        r = c.post("/admin/reset")
        assert r.status_code == 403 and "--token" in r.json()["detail"]


def test_a_rollback_before_the_first_post_does_not_serve_the_dropped_readings_forecast(client, run_dir, prepared):
    """Rolling back before the first post restarted the window's version at 0: the same steps posted again
    with other readings reached the cached forecast's key, and /forecast answered the dropped readings'."""
    data, wd = prepared
    t0 = int(wd.starts["test"][0])
    for k in range(12):
        assert post(client, data, t0 + k).status_code == 200
    dropped = client.get("/forecast").json()
    r = client.post("/admin/rollback", params={"to": str(data.index[t0 - 1])}, headers=AUTH)
    assert r.status_code == 200 and r.json()["latest"] is None, r.text
    for k in range(12):  # the same steps, the readings of other steps
        assert post(client, data, t0 - 200 + k, timestamp=str(data.index[t0 + k])).status_code == 200
    again = client.get("/forecast").json()
    assert again != dropped
    with TestClient(create_app(run_dir, "torch", state_path=False)) as fresh:
        for k in range(12):
            assert post(fresh, data, t0 - 200 + k, timestamp=str(data.index[t0 + k])).status_code == 200
        assert fresh.get("/forecast").json() == again


def test_reset_state_starts_empty_and_keeps_the_old_file(run_dir, prepared):
    data, wd = prepared
    state = state_file(run_dir)
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_bytes(b"damaged" * 1000)
    with pytest.raises(STKDError, match="--reset-state"):
        create_app(run_dir, "torch")
    with TestClient(create_app(run_dir, "torch", token=TOKEN, reset_state=True)) as c:
        assert post(c, data, int(wd.starts["test"][0])).status_code == 200
    (aside,) = state.parent.glob(state.name + ".bad-*")
    assert aside.read_bytes() == b"damaged" * 1000


# ------------------------------------------------------------------ 2. persistence switches itself off
def test_a_locked_state_file_gives_503_fast_and_nothing_is_acknowledged(client, run_dir, prepared):
    """With the SQLite file locked by someone else, a POST used to block 5 s, answer 200 and turn
    persistence off for good while /health said ok; those readings were gone after a restart."""
    data, wd = prepared
    t0 = int(wd.starts["test"][0])
    for k in range(12):
        assert post(client, data, t0 + k).status_code == 200
    other = sqlite3.connect(state_file(run_dir), isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        began = time.perf_counter()
        r = post(client, data, t0 + 12)
        took = time.perf_counter() - began
        assert r.status_code == 503 and "not stored (database is locked)" in r.json()["detail"], r.text
        assert took < 1.5, took  # the busy timeout is 0.2 s
        health = client.get("/health").json()
        assert health["status"] == "degraded" and health["reason"] == "saving the rolling window failed: database is locked"
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert client.get("/metadata").json()["window"]["latest"] == data.index[t0 + 11].isoformat()
    assert post(client, data, t0 + 12).status_code == 200  # not a duplicate: it was never accepted
    assert client.get("/health").json()["status"] == "ok"
    before = client.get("/forecast").json()
    client.app.state.service.close()  # a restart
    with TestClient(create_app(run_dir, "torch", token=TOKEN)) as c2:
        assert c2.get("/forecast").json() == before
        assert post(c2, data, t0 + 12).status_code == 409


def test_a_second_server_on_the_same_state_file_is_refused(client, run_dir):
    """Two servers on one run folder overwrote each other's window (12 acknowledged steps lost)."""
    with pytest.raises(STKDError, match="in use by another stkd serve"):
        create_app(run_dir, "torch")
    create_app(run_dir, "torch", state_path=False).state.service.close()  # without a state file: fine


def test_a_state_file_of_another_model_is_refused(run_dir, prepared):
    data, wd = prepared
    with TestClient(create_app(run_dir, "torch", token=TOKEN, state_path=run_dir / "s.sqlite")) as c:
        assert post(c, data, int(wd.starts["test"][0])).status_code == 200
    before = (run_dir / "s.sqlite").read_bytes()
    with pytest.raises(STKDError, match="belongs to another model"):
        create_app(run_dir, "torch", model="stid_plain", state_path=run_dir / "s.sqlite")
    assert (run_dir / "s.sqlite").read_bytes() == before


# ------------------------------------------------------------------ 3. precision
def test_each_value_keeps_its_own_precision(client, prepared):
    """One large node used to strip the decimals of every other (17.74881 -> 17.75)."""
    data, wd = prepared
    svc = client.app.state.service
    t0 = int(wd.starts["test"][0])
    values = np.full((1, wd.H, len(data.nodes), 1), 17.74881, np.float32)
    values[0, :, 0, 0] = 123456.7
    values[0, :, 2, 0] = 0.0012345678
    fc = svc.p._forecast(values, np.array([t0]))
    out = svc.forecast_json(fc, None)["values"]
    assert out[data.nodes[0]][0] == 123456.7
    assert out[data.nodes[1]][0] == 17.74881
    assert np.float32(out[data.nodes[2]][0]) == np.float32(0.0012345678)
    assert json.dumps(out[data.nodes[1]][0]) == "17.74881"


# ------------------------------------------------------------------ 4. one request blocks the worker
def test_a_body_of_600000_node_names_is_refused_before_parsing(client, prepared):
    data, wd = prepared
    body = {"end": str(data.index[100]), "values": {n: [1.0] * 12 for n in data.nodes},
            "nodes": [f"{i:x}" for i in range(600_000)]}
    raw = json.dumps(body, separators=(",", ":")).encode()
    assert len(raw) < 5 * 2**20  # under the service's general body limit
    began = time.perf_counter()
    r = client.post("/predict", content=raw, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413 and "10 nodes x 12 steps" in r.json()["detail"], r.text
    assert time.perf_counter() - began < 0.5
    # as many names as fit the size limit: counted, not parsed
    r = client.post("/predict", json={**body, "nodes": [f"n{i}" for i in range(1000)]}, headers=AUTH)
    assert r.status_code == 422 and "holds at most 48" in r.json()["detail"], r.text


# ------------------------------------------------------------------ 5. tokens
@pytest.mark.parametrize("token", ["", "  "])
def test_an_empty_token_is_an_error(run_dir, token):
    """``STKD_API_TOKEN=""`` silently turned authentication off."""
    with pytest.raises(STKDError, match="token is empty"):
        create_app(run_dir, "torch", token=token, state_path=False)


def test_where_a_valid_request_can_exceed_the_global_limit_the_413_says_which_limit_to_raise(run_dir, prepared):
    """A model with lagged inputs takes long requests (30 steps here); under a global limit smaller than that
    the 413 names --max-body-mb instead of claiming a valid request needs far less."""
    data, _ = prepared
    app = create_app(run_dir, "torch", token=TOKEN, model="stid_lags", max_body_bytes=20_000, state_path=None)
    with TestClient(app) as c:
        values = {n: [1.0] * 30 for n in data.nodes}
        raw = json.dumps({"end": str(data.index[100]), "values": values}, indent=40).encode()
        assert len(raw) > 20_000
        r = c.post("/predict", content=raw, headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 413, r.text
        assert "10 nodes x 30 steps can need up to" in r.json()["detail"] and "raise --max-body-mb" in r.json()["detail"]
