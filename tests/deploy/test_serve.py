"""The forecasting service through FastAPI's TestClient: endpoints, the rolling window, every bad payload."""

from __future__ import annotations

import json
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


def post_step(client, data, t: int, headers=AUTH, nodes=None):
    """POST the readings of step t (NaN -> null) for all nodes (or some)."""
    idx = range(len(data.nodes)) if nodes is None else nodes
    readings = {data.nodes[i]: (None if np.isnan(v := float(data.values[t, i, 0])) else v) for i in idx}
    return client.post("/observations", json={"timestamp": str(data.index[t]), "readings": readings},
                       headers=headers)


@pytest.fixture
def client(run_dir):
    with TestClient(create_app(run_dir, "torch", token=TOKEN)) as c:  # the lifespan releases the state file
        yield c


def test_health_metadata_and_not_ready(client, prepared):
    data, wd = prepared
    assert client.get("/health").json() == {"status": "ok", "model": "stid_kd", "backend": "torch", "ready": False}
    md = client.get("/metadata").json()
    assert md["nodes"] == data.nodes and md["horizon"] == 6 and md["input_len"] == 12 and md["freq"] == "5min"
    assert md["model"] == "stid_kd" and md["dataset"]["name"] == data.name and md["metrics"]["test"]["mae"] == 2.0
    assert md["metrics"]["test"]["mape"] is None  # NaN in metrics.json comes out as null, not a 500
    r = client.get("/forecast")
    assert r.status_code == 409 and "0 of 12 steps" in r.json()["detail"]


def test_rolling_window_of_30_posts_equals_predictor(client, run_dir, prepared):
    import stkd

    data, wd = prepared
    t0 = int(wd.starts["test"][0])
    for k in range(30):
        r = post_step(client, data, t0 + k)
        assert r.status_code == 200, r.text
        assert r.json()["window_steps"] == min(k + 1, 12) and r.json()["ready"] == (k + 1 >= 12)
        if k == 10:
            assert client.get("/forecast").status_code == 409
    r = client.get("/forecast")
    assert r.status_code == 200
    body = r.json()
    assert body["issued_at"] == data.index[t0 + 29].isoformat()
    assert body["target_times"][0] == (data.index[t0 + 29] + pd.Timedelta("5min")).isoformat()
    assert set(body["values"]) == set(data.nodes) and len(body["values"][data.nodes[0]]) == 6
    # the predictor given the same readings (plus what came before them: the service kept the last
    # reading of each node, as training's forward fill over the series does) gives the same numbers
    frame = pd.DataFrame(data.values[t0:t0 + 30, :, 0], index=data.index[t0:t0 + 30], columns=data.nodes)
    want = stkd.load(run_dir).predict(frame, as_frame=False).values[0, :, :, 0]  # [H, N]
    got = np.array([body["values"][n] for n in data.nodes]).T
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    one = client.get("/forecast", params={"node": [data.nodes[3], data.nodes[1]]}).json()
    assert list(one["values"]) == [data.nodes[3], data.nodes[1]]
    assert one["values"][data.nodes[1]] == body["values"][data.nodes[1]]


def test_restart_gives_the_same_forecast(run_dir, prepared):
    data, wd = prepared
    t0 = int(wd.starts["val"][0])
    with TestClient(create_app(run_dir, "torch", token=TOKEN)) as c1:  # a server that stops at the end
        for k in range(14):
            post_step(c1, data, t0 + k, nodes=range(2, 10) if k == 13 else None)  # the last step partial
        before = c1.get("/forecast").json()
    c2 = TestClient(create_app(run_dir, "torch"))  # a new process would read the same state file
    assert c2.get("/health").json()["ready"]
    assert c2.get("/forecast").json() == before
    r = post_step(c2, data, t0 + 13, nodes=[0])  # the restarted service still knows what it has seen
    assert r.status_code == 200
    r = post_step(c2, data, t0 + 13, nodes=[0])
    assert r.status_code == 409 and "duplicate" in r.json()["detail"]
    # and the onnx backend serves the same numbers
    c3 = TestClient(create_app(run_dir, "onnx", state_path=False))
    body = {"end": str(data.index[t0 + 11]), "values": {n: [float(x) if not np.isnan(x) else None
                                                            for x in data.values[t0:t0 + 12, i, 0]]
                                                        for i, n in enumerate(data.nodes)}}
    a = c3.post("/predict", json=body).json()["values"]
    b = c2.post("/predict", json=body).json()["values"]
    for n in data.nodes:
        np.testing.assert_allclose(a[n], b[n], rtol=1e-5, atol=1e-4)


def test_time_gap_advances_the_window_with_missing_steps(client, run_dir, prepared):
    import stkd

    data, wd = prepared
    t0 = int(wd.starts["test"][10])
    steps = list(range(12)) + [15, 16]  # steps 12..14 never arrive
    for k in steps:
        assert post_step(client, data, t0 + k).status_code == 200
    assert client.get("/metadata").json()["window"]["latest"] == data.index[t0 + 16].isoformat()
    got = client.get("/forecast").json()
    frame = pd.DataFrame(data.values[t0:t0 + 17, :, 0], index=data.index[t0:t0 + 17], columns=data.nodes)
    frame.iloc[12:15] = np.nan
    want = stkd.load(run_dir).predict(frame, as_frame=False).values[0, :, :, 0]
    np.testing.assert_allclose(np.array([got["values"][n] for n in data.nodes]).T, want, rtol=1e-5, atol=1e-4)


def test_predict_endpoint_matches_predictor(client, prepared, predictor):
    data, wd = prepared
    s = int(wd.starts["test"][7])
    win = data.values[s:s + 12]
    values = {n: [None if np.isnan(x) else float(x) for x in win[:, i, 0]] for i, n in enumerate(data.nodes)}
    r = client.post("/predict", json={"timestamps": [str(t) for t in data.index[s:s + 12]], "values": values},
                    headers={"X-API-Token": TOKEN})
    assert r.status_code == 200, r.text
    assert "alarms" not in r.json() and "threshold" not in r.json()  # event models only
    want = predictor.predict(win, data.index[s:s + 12], as_frame=False).values[0, :, :, 0]
    np.testing.assert_allclose(np.array([r.json()["values"][n] for n in data.nodes]).T, want, rtol=1e-5, atol=1e-4)
    r2 = client.post("/predict", json={"end": str(data.index[s + 11]), "values": values, "nodes": [data.nodes[0]]},
                     headers=AUTH)
    assert list(r2.json()["values"]) == [data.nodes[0]]
    assert r2.json()["values"][data.nodes[0]] == r.json()["values"][data.nodes[0]]


def _window(data, s, P=12):
    return {n: [None if np.isnan(x) else float(x) for x in data.values[s:s + P, i, 0]] for i, n in enumerate(data.nodes)}


@pytest.mark.parametrize("case, status, match", [
    ("unknown_node", 422, "unknown node"),
    ("string_value", 422, "valid number"),
    ("bool_value", 422, "valid number"),
    ("nan_literal", 422, "finite number"),
    ("infinity_literal", 422, "finite number"),
    ("float32_overflow", 422, "float32 range"),
    ("vector_for_one_feature", 422, "2 values"),
    ("empty_readings", 422, "at least 1 item"),
    ("no_timestamp", 422, "timestamp: Field required"),
    ("bad_timestamp", 422, "not a timestamp"),
    ("off_grid", 422, "not on the data's 5min grid"),
    ("timezone", 422, "timezone"),
    ("number_timestamp", 422, "timestamp"),
    ("extra_field", 422, "Extra inputs"),
    ("not_json", 422, "JSON"),
    ("list_body", 422, "Input should be an object"),
    ("no_token", 401, "API token"),
    ("wrong_token", 401, "API token"),
    ("too_large", 413, "over the limit"),
    ("too_large_chunked", 413, "over the limit"),
    ("out_of_order", 409, "out of order"),
    ("duplicate", 409, "duplicate"),
])
def test_bad_observations(client, prepared, case, status, match):
    data, wd = prepared
    t = int(wd.starts["test"][0])
    assert post_step(client, data, t + 1).status_code == 200
    node = data.nodes[0]
    ts = str(data.index[t + 2])
    body: dict | None = {"timestamp": ts, "readings": {node: 50.0}}
    headers, content = dict(AUTH), None
    if case == "unknown_node":
        body["readings"] = {"nope": 1.0}
    elif case == "string_value":
        body["readings"] = {node: "50"}
    elif case == "bool_value":
        body["readings"] = {node: True}
    elif case in ("nan_literal", "infinity_literal"):
        body, content = None, ('{"timestamp": "%s", "readings": {"%s": %s}}'
                               % (ts, node, "NaN" if case == "nan_literal" else "Infinity")).encode()
    elif case == "float32_overflow":
        body["readings"] = {node: 1e300}
    elif case == "vector_for_one_feature":
        body["readings"] = {node: [1.0, 2.0]}
    elif case == "empty_readings":
        body["readings"] = {}
    elif case == "no_timestamp":
        del body["timestamp"]
    elif case == "bad_timestamp":
        body["timestamp"] = "yesterday-ish"
    elif case == "off_grid":
        body["timestamp"] = str(data.index[t + 2] + pd.Timedelta("2min"))
    elif case == "timezone":
        body["timestamp"] = data.index[t + 2].tz_localize("UTC").isoformat()
    elif case == "number_timestamp":
        body["timestamp"] = 1234567890
    elif case == "extra_field":
        body["extra"] = 1
    elif case == "not_json":
        body, content = None, b"timestamp=now"
    elif case == "list_body":
        body = [1, 2, 3]
    elif case == "no_token":
        headers = {}
    elif case == "wrong_token":
        headers = {"Authorization": "Bearer nope"}
    elif case == "too_large":
        body, content = None, b'{"timestamp": "' + b"x" * (5 * 2**20) + b'"}'
    elif case == "too_large_chunked":  # no Content-Length: the middleware counts what arrives
        body, content = None, (b"x" * 2**20 for _ in range(6))
    elif case == "out_of_order":
        body["timestamp"] = str(data.index[t])
    elif case == "duplicate":
        body["timestamp"] = str(data.index[t + 1])
    if content is not None:
        r = client.post("/observations", content=content, headers={**headers, "Content-Type": "application/json"})
    else:
        r = client.post("/observations", json=body, headers=headers)
    assert r.status_code == status, (r.status_code, r.text)
    detail = r.json()["detail"]
    assert isinstance(detail, str) and match in detail, detail
    # the service is still fine afterwards
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize("case, match", [
    ("missing_node", "missing"),
    ("unknown_node", "unknown node"),
    ("short", "11 steps"),
    ("both_times", "either timestamps"),
    ("no_times", "either timestamps"),
    ("few_timestamps", "3 given"),
    ("not_consecutive", "consecutive"),
    ("all_null", "no observation"),
    ("nan", "finite number"),
    ("nested_wrong", "1 feature"),
    ("unknown_output_node", "unknown node"),
])
def test_bad_predict_payloads(client, prepared, case, match):
    data, wd = prepared
    s = int(wd.starts["test"][0])
    values = _window(data, s)
    body = {"end": str(data.index[s + 11]), "values": values}
    if case == "missing_node":
        del values[data.nodes[4]]
    elif case == "unknown_node":
        values["nope"] = [1.0] * 12
    elif case == "short":
        values[data.nodes[0]] = values[data.nodes[0]][:11]
    elif case == "both_times":
        body["timestamps"] = [str(x) for x in data.index[s:s + 12]]
    elif case == "no_times":
        del body["end"]
    elif case == "few_timestamps":
        del body["end"]
        body["timestamps"] = [str(x) for x in data.index[s:s + 3]]
    elif case == "not_consecutive":
        del body["end"]
        body["timestamps"] = [str(x) for x in data.index[s:s + 11]] + [str(data.index[s + 20])]
    elif case == "all_null":
        body["values"] = {n: [None] * 12 for n in data.nodes}
    elif case == "nested_wrong":
        values[data.nodes[0]] = [[1.0, 2.0]] * 12
    elif case == "unknown_output_node":
        body["nodes"] = ["nope"]
    if case == "nan":
        text = json.dumps(body).replace("null", "NaN", 1)
        if "NaN" not in text:
            text = text.replace(str(values[data.nodes[0]][0]), "NaN", 1)
        r = client.post("/predict", content=text.encode(), headers={**AUTH, "Content-Type": "application/json"})
    else:
        r = client.post("/predict", json=body, headers=AUTH)
    assert r.status_code == 422, (r.status_code, r.text)
    assert match in r.json()["detail"], r.json()["detail"]


def test_forecast_unknown_node_is_404(client, prepared):
    data, wd = prepared
    for k in range(12):
        post_step(client, data, int(wd.starts["test"][0]) + k)
    r = client.get("/forecast", params={"node": "nope"})
    assert r.status_code == 404 and "unknown node" in r.json()["detail"]


def test_no_token_means_open_writes(run_dir, prepared):
    data, wd = prepared
    c = TestClient(create_app(run_dir, "torch", state_path=False))
    assert post_step(c, data, int(wd.starts["test"][0]), headers={}).status_code == 200


def test_openapi_schema_is_valid(client):
    schema = client.app.openapi()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert {"/observations", "/forecast", "/predict", "/health", "/metadata"} <= set(paths)
    assert "requestBody" in paths["/observations"]["post"] and "409" in paths["/observations"]["post"]["responses"]
    try:
        from openapi_spec_validator import validate
    except ImportError:  # structural check only
        for path, ops in paths.items():
            assert path.startswith("/")
            for method, op in ops.items():
                assert method in ("get", "post") and "responses" in op
        return
    validate(schema)
    assert json.loads(client.get("/openapi.json").text) == schema


def _without_hot_paths(app):
    """The same app answered by its FastAPI routes only (the middleware stack is built at the first request)."""
    from stkd.deploy.asgi import HotPaths

    app.user_middleware = [m for m in app.user_middleware if m.cls is not HotPaths]
    return app


def test_hot_paths_answer_exactly_as_the_fastapi_routes(run_dir, prepared):
    """Every request below gets the same status, JSON and auth header from HotPaths as from the declared
    FastAPI routes: good and bad posts, forecasts with and without ?node=, tokens missing or wrong."""
    data, wd = prepared
    t0 = int(wd.starts["test"][0])
    fast = TestClient(create_app(run_dir, "torch", token=TOKEN, state_path=False))
    routed = TestClient(_without_hot_paths(create_app(run_dir, "torch", token=TOKEN, state_path=False)))
    window = _window(data, t0)
    n0, n1 = data.nodes[0], data.nodes[1]
    requests = [("get", "/forecast", {}, {})]  # 409: no window yet
    for k in range(12):
        readings = {n: (None if np.isnan(v := float(data.values[t0 + k, i, 0])) else v)
                    for i, n in enumerate(data.nodes)}
        requests.append(("post", "/observations", {"json": {"timestamp": str(data.index[t0 + k]),
                                                            "readings": readings}}, AUTH))
    requests += [
        ("post", "/observations", {"json": {"timestamp": str(data.index[t0]), "readings": {n0: 1.0}}}, AUTH),  # 409
        ("post", "/observations", {"json": {"timestamp": "soon", "readings": {n0: 1.0}}}, AUTH),
        ("post", "/observations", {"json": {"timestamp": str(data.index[t0 + 12]), "readings": {n0: "x"}}}, AUTH),
        ("post", "/observations", {"json": {"timestamp": str(data.index[t0 + 12]), "readings": {n0: 1.0}}}, {}),
        ("get", "/forecast", {}, {}),
        ("get", f"/forecast?node={n1}&node={n0}", {}, {}),
        ("get", "/forecast?node=nope", {}, {}),
        ("post", "/predict", {"json": {"end": str(data.index[t0 + 11]), "values": window}}, AUTH),
        ("post", "/predict", {"json": {"timestamps": [str(x) for x in data.index[t0:t0 + 12]], "values": window,
                                       "nodes": [n1]}}, {"X-API-Token": TOKEN}),
        ("post", "/predict", {"json": {"end": str(data.index[t0 + 11]), "values": window}},
         {"Authorization": "Bearer wrong"}),
        ("post", "/predict", {"json": {"values": window}}, AUTH),
        ("post", "/predict", {"content": b"[1, 2", "headers": {"Content-Type": "application/json"}}, AUTH),
        ("post", "/predict", {"json": {"end": str(data.index[t0 + 11]), "values": {n0: [1.0] * 12}}}, AUTH),
    ]
    statuses = []
    for method, url, kwargs, headers in requests:
        kw = dict(kwargs)
        kw["headers"] = {**headers, **kw.get("headers", {})}
        a, b = getattr(fast, method)(url, **kw), getattr(routed, method)(url, **kw)
        assert a.status_code == b.status_code, (url, a.text, b.text)
        assert a.json() == b.json(), url
        assert a.headers.get("www-authenticate") == b.headers.get("www-authenticate")
        statuses.append(a.status_code)
    assert statuses.count(200) == 12 + 4 and {401, 404, 409, 422} <= set(statuses)


def test_the_earlier_default_state_file_is_resumed(run_dir, prepared, version_1_npz):
    """A service upgraded in place finds the window an earlier version kept in ``deploy/state-<model>.npz``."""
    data, wd = prepared
    c1 = TestClient(create_app(run_dir, "torch", token=TOKEN, state_path=False))
    t0 = int(wd.starts["val"][0])
    for k in range(13):
        post_step(c1, data, t0 + k)
    before = c1.get("/forecast", headers=AUTH).json()
    svc = c1.app.state.service
    old = run_dir / "deploy" / f"state-{svc.p.spec.model}.npz"
    old.parent.mkdir(parents=True, exist_ok=True)
    old.write_bytes(version_1_npz(svc.window, svc.p.spec.model, svc.p.spec.nodes))
    assert not old.with_suffix(".sqlite").exists()
    c2 = TestClient(create_app(run_dir, "torch", token=TOKEN))
    assert c2.get("/forecast", headers=AUTH).json() == before
    assert old.with_name(old.name + ".v1").is_file() and not old.exists()
    assert old.with_suffix(".sqlite").is_file()


def test_a_state_file_that_is_not_a_window_is_refused_and_not_overwritten(run_dir, tmp_path):
    """It used to serve with persistence silently off (issue 17); now the service does not start."""
    mine = tmp_path / "mine.txt"
    mine.write_text("not a database\n" * 50)
    with pytest.raises(STKDError, match=f"state file {mine} cannot be used: it is not an SQLite file"):
        create_app(run_dir, "torch", state_path=mine)
    assert mine.read_text() == "not a database\n" * 50


def test_hot_paths_pass_every_other_request_on(run_dir):
    """Other paths and methods (HEAD, GET /predict, /health) reach the FastAPI app; a root_path prefix
    (a service behind a proxy) is stripped before matching."""
    import asyncio

    from stkd.deploy.asgi import HotPaths

    app = create_app(run_dir, "torch", state_path=False)
    reached = []

    async def inner(scope, receive, send):
        reached.append((scope["method"], scope["path"]))

    hot = HotPaths(inner, app.state.service, token=None, max_bytes=1000)

    async def call(method, path, root=""):
        sent = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(msg):
            sent.append(msg)

        await hot({"type": "http", "method": method, "path": path, "root_path": root, "headers": [],
                   "query_string": b""}, receive, send)
        return sent[0]["status"] if sent else None

    assert asyncio.run(call("GET", "/health")) is None
    assert asyncio.run(call("HEAD", "/forecast")) is None
    assert asyncio.run(call("GET", "/predict")) is None
    assert reached == [("GET", "/health"), ("HEAD", "/forecast"), ("GET", "/predict")]
    assert asyncio.run(call("GET", "/api/forecast", root="/api")) == 409  # answered here: no window yet
    assert asyncio.run(call("POST", "/api/predict", root="/api")) == 422  # an empty body
    assert len(reached) == 3


def test_a_bug_is_a_500_that_names_itself_and_is_logged(run_dir, caplog):
    import logging

    app = create_app(run_dir, "torch", state_path=False)

    def broken(raw):
        raise RuntimeError("a bug")

    app.state.service.predict = broken
    c = TestClient(app)
    with caplog.at_level(logging.ERROR, logger="stkd.deploy.asgi"):
        r = c.post("/predict", json={})
    assert r.status_code == 500 and r.json()["detail"] == "internal error (RuntimeError); see the server log"
    assert "internal error on POST /predict" in caplog.text and "a bug" in caplog.text
    assert c.get("/health").status_code == 200


def test_a_model_that_reads_lags_serves_its_rolling_window_and_predict_from_its_whole_history(run_dir, prepared):
    """The lag-reading student (lags of 12 and 24 steps, so 30 steps of history): the rolling window is ready
    once it holds 30 steps, and both endpoints give the predictor's numbers."""
    import stkd

    data, wd = prepared
    p = stkd.load(run_dir, "stid_lags")
    L = p.history_len
    t0 = int(wd.starts["test"][0])
    with TestClient(create_app(run_dir, "torch", token=TOKEN, model="stid_lags")) as client:
        info = client.get("/metadata").json()
        assert info["lags"] == [12, 24] and info["history_len"] == L == 30 and info["input_len"] == 12
        for k in range(L):
            r = post_step(client, data, t0 + k)
            assert r.json()["window_steps"] == k + 1 and r.json()["ready"] == (k + 1 >= L)
            if k == L - 2:
                assert client.get("/forecast").status_code == 409  # 29 of 30 steps: not yet
        body = client.get("/forecast").json()
        frame = pd.DataFrame(data.values[t0:t0 + L, :, 0], index=data.index[t0:t0 + L], columns=data.nodes)
        want = p.predict(frame, as_frame=False).values[0, :, :, 0]  # [H, N]
        np.testing.assert_allclose(np.array([body["values"][n] for n in data.nodes]).T, want, rtol=1e-5, atol=1e-4)
        win = data.values[t0:t0 + L]
        values = {n: [None if np.isnan(x) else float(x) for x in win[:, i, 0]] for i, n in enumerate(data.nodes)}
        r = client.post("/predict", json={"end": str(data.index[t0 + L - 1]), "values": values}, headers=AUTH)
        assert r.status_code == 200, r.text
        want = p.predict(win, end=data.index[t0 + L - 1], as_frame=False).values[0, :, :, 0]
        np.testing.assert_allclose(np.array([r.json()["values"][n] for n in data.nodes]).T, want, rtol=1e-5, atol=1e-4)
        short = {n: v[-12:] for n, v in values.items()}
        r = client.post("/predict", json={"end": str(data.index[t0 + L - 1]), "values": short}, headers=AUTH)
        assert r.status_code == 422 and "the model needs 30" in r.json()["detail"]
