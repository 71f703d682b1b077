"""stkd.load(run_dir).predict(...): the same numbers as the training data pipeline, clear errors otherwise."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import stkd
from stkd.data.impute import fill_inputs
from stkd.data.windows import steps_per_week
from stkd.errors import DataError, STKDError


def reference(model, wd, starts) -> np.ndarray:
    """What evaluation computes: WindowedData.batch -> model -> inverse scaling. [B, H, N, F_out]."""
    b = wd.batch(starts)
    with torch.no_grad():
        pred = model(b.x, b.tod, b.dow)["pred"]
    return wd.scaler.inverse(pred, feature_slice=slice(0, wd.out_features)).numpy()


def raw_frame(data, end: int) -> pd.DataFrame:
    """The raw readings (NaN = missing) up to step ``end`` (exclusive) as a wide frame."""
    return pd.DataFrame(data.values[:end, :, 0], index=data.index[:end], columns=data.nodes)


def test_default_model_is_the_distilled_student(predictor):
    assert predictor.name == "stid_kd" and predictor.role == "student_kd"
    assert predictor.nodes[:2] == ["773869", "767541"] and predictor.input_len == 12 and predictor.horizon == 6
    assert predictor.metrics["test"]["mae"] == 2.0


def test_unknown_model_names_the_ones_there(run_template):
    with pytest.raises(STKDError, match="no model 'nope'.*stid_kd"):
        stkd.load(run_template, "nope")


@pytest.mark.parametrize("name", ["stid_kd", "gwnet", "mlp_plain", "stid_nb"])
def test_round_trip_equals_in_process_model(run_template, prepared, name):
    """Raw readings through the predictor == the same windows through WindowedData.batch and the model."""
    data, wd = prepared
    p = stkd.load(run_template, name)
    starts = np.concatenate([wd.starts["test"][:2], wd.starts["train"][:1], wd.starts["val"][-1:]])
    ref = reference(p.model, wd, starts)
    P = wd.P
    for i, s in enumerate(starts):
        fc = p.predict(raw_frame(data, s + P), as_frame=False)  # history before the window feeds the fill
        np.testing.assert_allclose(fc.values[0], ref[i], rtol=1e-5, atol=1e-4)
        assert fc.issued_at[0] == data.index[s + P - 1]
    assert np.isnan(data.values[:, :, 0]).any()  # the data really has gaps


def test_fill_with_carry_equals_training_fill(predictor, prepared):
    """The window fill plus the last reading before it == training's fill of the whole series."""
    data, wd = prepared
    full = fill_inputs(data.values, data.mask, "ffill", period=steps_per_week(data.index),
                       train_end=wd.ranges["train"][1])
    prep = predictor.prep
    pos_all = prep.positions(data.index)
    P = wd.P
    last = np.full(data.values.shape[1:], np.nan, np.float32)
    for s in range(0, data.num_steps - P):
        got = prep.fill(data.values[s:s + P], pos_all[s:s + P], carry=last)
        np.testing.assert_array_equal(got, full[s:s + P])
        row = data.values[s]
        np.copyto(last, row, where=~np.isnan(row))


def test_numpy_window_forms_agree(predictor, prepared):
    data, wd = prepared
    s = int(wd.starts["test"][5])
    P = wd.P
    win = data.values[s:s + P]  # [P, N, 1]
    ts = data.index[s:s + P]
    a = predictor.predict(win, ts, as_frame=False).values
    b = predictor.predict(win[:, :, 0], end=ts[-1], as_frame=False).values  # [P, N] when F == 1
    perm = np.random.default_rng(0).permutation(len(data.nodes))
    c = predictor.predict(win[:, perm], ts, nodes=[data.nodes[i] for i in perm], as_frame=False).values
    batch = np.stack([win, data.values[s + 1:s + 1 + P]])
    d = predictor.predict(batch, np.stack([ts, data.index[s + 1:s + 1 + P]]), as_frame=False)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, c, atol=1e-5)
    np.testing.assert_allclose(a, d.values[:1], atol=1e-5)
    assert len(d) == 2 and d.issued_at[1] == ts[-1] + pd.Timedelta("5min")


def test_frame_output_long_form(predictor, prepared):
    data, wd = prepared
    s = int(wd.starts["test"][0])
    df = predictor.predict(raw_frame(data, s + wd.P))
    assert list(df.columns) == ["issued_at", "target_time", "node", "horizon", "value"]
    assert len(df) == wd.num_nodes * wd.H
    first = df[df["node"] == data.nodes[0]]
    assert list(first["horizon"]) == list(range(1, wd.H + 1))
    assert (first["target_time"] - first["issued_at"] == pd.to_timedelta(first["horizon"] * 5, unit="min")).all()
    arr = predictor.predict(raw_frame(data, s + wd.P), as_frame=False).values[0]  # [H, N, 1]
    np.testing.assert_allclose(first["value"].to_numpy(), arr[:, 0, 0], rtol=1e-6)


def test_long_frame_equals_wide_frame(predictor, prepared):
    data, wd = prepared
    end = int(wd.starts["test"][3]) + wd.P
    wide = raw_frame(data, end).iloc[-30:]
    long = wide.rename_axis("timestamp").reset_index().melt(id_vars="timestamp", var_name="node", value_name="value")
    long = long.sample(frac=1.0, random_state=0)  # order does not matter
    a = predictor.predict(wide, as_frame=False).values
    b = predictor.predict(long, as_frame=False).values
    np.testing.assert_array_equal(a, b)


def test_event_model_returns_probabilities(run_template, prepared):
    data, wd = prepared
    p = stkd.load(run_template, "mlp_events")
    assert p.out_classes == 2
    s = int(wd.starts["test"][0])
    fc = p.predict(data.values[s:s + wd.P], data.index[s:s + wd.P], as_frame=False)
    assert fc.values.shape == (1, wd.H, wd.num_nodes, 1, 2)
    np.testing.assert_allclose(fc.values.sum(-1), 1.0, atol=1e-6)
    df = fc.to_frame()
    assert list(df.columns) == ["issued_at", "target_time", "node", "horizon", "class", "value"]
    assert df["value"].between(0, 1).all() and set(df["class"]) == {0, 1}


@pytest.mark.parametrize("case, match", [
    ("short", "needs 12 consecutive steps, the window has 11"),
    ("features", "F=1 feature"),
    ("nodes", "N=10 nodes"),
    ("unknown", "unknown node id"),
    ("missing", "missing"),
    ("offgrid", "not on the data's 5min grid"),
    ("gap", "consecutive"),
    ("nan", "no observation at all"),
    ("tz", "timezone"),
    ("no_time", "give the window's timestamps"),
    ("inf", "infinite"),
])
def test_bad_windows_are_clear_errors(predictor, prepared, case, match):
    data, wd = prepared
    s = int(wd.starts["test"][0])
    P = wd.P
    win, ts, kw = data.values[s:s + P].copy(), data.index[s:s + P], {}
    if case == "short":
        win, ts = win[1:], ts[1:]
    elif case == "features":
        win = np.concatenate([win, win], axis=2)
    elif case == "nodes":
        win = win[:, :-1]
    elif case == "unknown":
        kw["nodes"] = ["x"] + data.nodes[1:]
    elif case == "missing":
        win, kw["nodes"] = win[:, :-1], data.nodes[:-1]
    elif case == "offgrid":
        ts = ts + pd.Timedelta("1min")
    elif case == "gap":
        ts = ts.delete(P // 2).append(ts[-1:] + pd.Timedelta("5min"))
    elif case == "nan":
        win[:] = np.nan
    elif case == "tz":
        ts = ts.tz_localize("UTC")
    elif case == "no_time":
        ts = None
    elif case == "inf":
        win[0, 0, 0] = np.inf
    with pytest.raises(DataError, match=match):
        predictor.predict(win, ts, **kw)


def test_frame_errors(predictor, prepared):
    data, wd = prepared
    frame = raw_frame(data, int(wd.starts["test"][0]) + wd.P)
    with pytest.raises(DataError, match="needs 12 consecutive steps"):
        predictor.predict(frame.iloc[-5:])
    with pytest.raises(DataError, match="unknown node id"):
        predictor.predict(frame.assign(extra=1.0))
    with pytest.raises(DataError, match="missing"):
        predictor.predict(frame.drop(columns=data.nodes[3]))
    with pytest.raises(DataError, match="must increase"):
        predictor.predict(pd.concat([frame, frame.iloc[-1:]]))
    with pytest.raises(DataError, match="no observation"):
        predictor.predict(frame.iloc[-12:] * np.nan)


def test_statistics_are_cached_and_survive_missing_data(run_dir, prepared):
    data, wd = prepared
    shutil.rmtree(run_dir / "deploy", ignore_errors=True)
    p1 = stkd.load(run_dir)
    assert (run_dir / "deploy" / "stats.npz").is_file() and p1.spec.stats_source == "data"
    assert p1.spec.seasonal_means.shape == (steps_per_week(data.index), wd.num_nodes, 1)
    # the data file disappears: the cache still serves, even the teacher's graph
    cfg_text = (run_dir / "config.yaml").read_text()
    (run_dir / "config.yaml").write_text(cfg_text.replace("los_slice.csv", "does_not_exist.csv"))
    p2 = stkd.load(run_dir, "gwnet")
    assert p2.spec.stats_source == "data"
    # without cache and data: the scaler's center (== train mean for a per-node z-score), with a warning
    shutil.rmtree(run_dir / "deploy")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        p3 = stkd.load(run_dir)
    assert any("cannot be loaded" in str(x.message) for x in w)
    assert p3.spec.stats_source == "scaler" and p3.spec.seasonal_means is None
    np.testing.assert_allclose(p3.spec.train_means, p1.spec.train_means, rtol=1e-5)
    with pytest.raises(STKDError, match="needs the graph"):
        stkd.load(run_dir, "gwnet")


def test_predict_series_matches_single_windows(predictor, prepared):
    data, wd = prepared
    end = int(wd.starts["test"][0]) + wd.P + 20
    vals, idx = data.values[:end], data.index[:end]
    fcs = list(predictor.predict_series(vals, idx, every=7, batch_size=16))
    issued = np.concatenate([np.asarray(f.issued_at) for f in fcs])
    assert issued[-1] == np.datetime64(idx[-1]) and len(issued) == len(range(end - 1, wd.P - 2, -7))
    single = predictor.predict(raw_frame(data, end), as_frame=False)
    np.testing.assert_allclose(fcs[-1].values[-1], single.values[0], atol=1e-5)


def test_calendar_lookup_equals_time_covariates(predictor, prepared):
    from stkd.data.windows import time_covariates

    data, wd = prepared
    pos = predictor.prep.positions(data.index)
    tod, dow = predictor.prep.covariates(pos[None, :])
    ref_tod, ref_dow = time_covariates(data.index)
    np.testing.assert_array_equal(tod[0], ref_tod)
    np.testing.assert_array_equal(dow[0], ref_dow)
    np.testing.assert_array_equal(tod[0], wd.tod.numpy())
    far = np.array([-5000, 10**6 + 7])  # before the data and years later
    t2, d2 = predictor.prep.covariates(far)
    r2 = time_covariates(predictor.prep.times(far))
    np.testing.assert_array_equal(t2, r2[0])
    np.testing.assert_array_equal(d2, r2[1])


def test_grid_positions_fast_path_equals_the_general_path(predictor, prepared):
    """A request's naive ISO strings (numpy's fast parse) land on the same steps as pandas would put them,
    and every string the fast path does not take still gets the general path's answer or error."""
    data, _ = prepared
    prep = predictor.prep
    t = data.index[100:112]
    spellings = [
        [str(x) for x in t],  # 2012-03-01 08:20:00
        [x.isoformat() for x in t],  # 2012-03-01T08:20:00
        [x.strftime("%Y-%m-%d %H:%M") for x in t],
        [x.strftime("%Y-%m-%dT%H:%M:%S.000") for x in t],
        [x.strftime("%Y/%m/%d %H:%M") for x in t],  # not ISO: the general path
    ]
    want = prep.positions(t)
    for texts in spellings:
        np.testing.assert_array_equal(prep.grid_positions(texts), want)
        np.testing.assert_array_equal(prep.grid_positions(np.asarray(texts, dtype=object)), want)
    np.testing.assert_array_equal(prep.grid_positions(["2012-03-01"]), prep.positions(pd.DatetimeIndex(["2012-03-01"])))
    for bad, match in ((["2012-13-01 00:00"], "not a timestamp"), (["2012-03-01 00:02"], "not on the data's 5min grid"),
                       (["2012-03-01T00:05+01:00"], "timezone"), (["2012-03-01 00:05Z"], "timezone")):
        with pytest.raises(DataError, match=match):
            prep.grid_positions(bad)


def test_the_default_model_is_the_student_that_scored_better_on_validation(run_dir):
    from stkd.io import write_json

    cards = {}
    for card_path in (run_dir / "models").glob("*/model.json"):
        cards[card_path.parent.name] = json.loads(card_path.read_text())
    scores = {"stid_kd": 2.0, "stid_plain": 1.5, "mlp_plain": 1.9, "stid_nb": 1.8, "mlp_nb": 1.95}  # the plain twin is best
    for name, card in cards.items():
        if name in scores:
            write_json(run_dir / "models" / name / "model.json", {**card, "val_mae": scores[name]})
    assert stkd.load(run_dir).name == "stid_plain"
    write_json(run_dir / "models" / "stid_plain" / "model.json", {**cards["stid_plain"], "val_mae": 2.5})
    assert stkd.load(run_dir).name == "stid_nb"  # the best of every student on validation
    assert stkd.load(run_dir, "stid_kd").name == "stid_kd"  # asked by name: that one


def test_a_model_that_reads_lags_serves_from_a_history_back_to_its_longest_lag(run_template, prepared):
    """A student with ``inputs.lags`` (1 and 2 hours): raw readings through the predictor == the same windows
    through training's view of the data and the model, in every input form."""
    from stkd.config import InputsConfig

    data, wd = prepared
    p = stkd.load(run_template, "stid_lags")
    assert p.spec.lags == [12, 24] and p.history_len == 12 + 24 - 6 and p.spec.in_channels == 3
    vwd = wd.view(InputsConfig(lags=["1h", "2h"]))
    starts = np.concatenate([wd.starts["test"][:2], wd.starts["val"][-1:]])
    ref = reference(p.model, vwd, starts)
    P, L = wd.P, p.history_len
    for i, s in enumerate(starts):
        fc = p.predict(raw_frame(data, s + P), as_frame=False)  # the frame: its last L steps are read
        np.testing.assert_allclose(fc.values[0], ref[i], rtol=1e-5, atol=1e-4)
    # an array of L steps ending at the window's last input step, with the fill of training (whole series)
    s = int(starts[0])
    filled = p.prep.fill(data.values[: s + P], p.prep.positions(data.index[: s + P]))
    arr = p.predict(filled[s + P - L:], end=data.index[s + P - 1], as_frame=False)
    np.testing.assert_allclose(arr.values[0], ref[0], rtol=1e-5, atol=1e-4)
    # batch prediction over the series: the same forecasts at the same issue times
    series = list(p.predict_series(data.values, data.index))
    issued = {t: k for fc in series for k, t in enumerate(fc.issued_at)}
    by_time = {t: fc.values[k] for fc in series for t, k in ((t, issued[t]) for t in fc.issued_at)}
    for i, s in enumerate(starts):
        np.testing.assert_allclose(by_time[data.index[s + P - 1]], ref[i], rtol=1e-5, atol=1e-4)
    assert min(by_time) == data.index[L - 1]  # the first forecast: once the history reaches back to the lag
    with pytest.raises(DataError, match=r"needs 30 consecutive steps \(its 12 input steps and back to its lag of "
                                        r"24 steps\), the window has 12"):
        p.predict(data.values[s:s + P], end=data.index[s + P - 1])
