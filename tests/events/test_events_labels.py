"""Event labels on hand-made series: threshold, bands, look-ahead, split boundaries, given labels, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stkd.config import DataConfig, EventsConfig, WindowConfig, parse_config
from stkd.data.container import STData
from stkd.data.loaders import load_data
from stkd.data.windows import prepare
from stkd.errors import ConfigError, DataError
from stkd.events.labels import (
    build_labels,
    check_train_labels,
    class_weights,
    look_ahead,
)

NAN = np.nan
INDEX = pd.date_range("2024-01-01", periods=8, freq="5min")


def one_node(values, nodes=("a",), features=("speed",), **kw) -> STData:
    v = np.asarray(values, dtype=np.float32).reshape(len(values), len(nodes), -1)
    return STData.from_values(v, INDEX[:len(values)] if len(values) <= 8 else
                              pd.date_range("2024-01-01", periods=len(values), freq="5min"),
                              list(nodes), list(features), **kw)


SERIES = [50, 30, NAN, 45, 20, 60, 61, 39]  # state (< 40): 0 1 ? 0 1 0 0 1


def test_threshold_labels_and_mask():
    lab = build_labels(EventsConfig(rule="threshold", op="<", value=40), one_node(SERIES))
    assert lab.num_classes == 2
    assert lab.labels[:, 0].tolist() == [0, 1, 0, 0, 1, 0, 0, 1]
    assert lab.mask[:, 0].tolist() == [True, True, False, True, True, True, True, True]
    ge = build_labels(EventsConfig(rule="threshold", op=">=", value=45), one_node(SERIES))
    assert ge.labels[:, 0].tolist() == [1, 0, 0, 1, 0, 1, 1, 0]


def test_threshold_within_looks_ahead():
    lab = build_labels(EventsConfig(rule="threshold", op="<", value=40, within=2), one_node(SERIES))
    # label[t] = worst state over t, t+1; known if both known or an event was seen
    assert lab.labels[:, 0].tolist() == [1, 1, 0, 1, 1, 0, 1, 1]
    assert lab.mask[:, 0].tolist() == [True, True, False, True, True, True, True, True]
    # the last step without an event cannot look past the end of the series
    lab2 = build_labels(EventsConfig(rule="threshold", op="<", value=40, within=2), one_node(SERIES[:7]))
    assert not lab2.mask[-1, 0]


def test_look_ahead_stops_at_split_boundaries():
    state = np.array([[0], [0], [0], [1], [0], [0]])
    known = np.ones_like(state, dtype=bool)
    lab, m = look_ahead(state, known, 2, 1, segments=[(0, 3), (3, 6)])
    assert lab[:, 0].tolist() == [0, 0, 0, 1, 0, 0]
    # step 2 would read step 3 (the next split): unknown instead
    assert m[:, 0].tolist() == [True, True, False, True, True, False]
    lab, m = look_ahead(state, known, 2, 1)
    assert lab[:, 0].tolist() == [0, 0, 1, 1, 0, 0] and m[:, 0].tolist() == [True] * 5 + [False]


def test_bands_are_ordered_classes():
    data = one_node([10, 35, 74.9, 75, 200, NAN], features=("pm25",))
    lab = build_labels(EventsConfig(rule="bands", target="pm25", edges=[35, 75]), data)
    assert lab.num_classes == 3
    assert lab.labels[:5, 0].tolist() == [0, 1, 1, 2, 2]
    assert lab.mask[:, 0].tolist() == [True] * 5 + [False]
    assert lab.class_names == ["[-inf, 35)", "[35, 75)", "[75, inf)"]
    # worst band over the look-ahead; a missing step hides a lower band but not the top one
    lab = build_labels(EventsConfig(rule="bands", target="pm25", edges=[35, 75], within=2), data)
    assert lab.labels[:5, 0].tolist() == [1, 1, 2, 2, 2]
    assert lab.mask[:, 0].tolist() == [True, True, True, True, True, False]


def test_persistence_state_is_forward_filled():
    lab = build_labels(EventsConfig(rule="threshold", op="<", value=40, within=3), one_node(SERIES))
    assert lab.state[:, 0].tolist() == [0, 1, 1, 0, 1, 0, 0, 1]  # step 2 is missing: carries step 1
    assert lab.now(np.array([0, 1]), P=3)[:, 0].tolist() == [1, 0]  # steps 2 and 3


def test_window_indexing():
    lab = build_labels(EventsConfig(rule="threshold", op="<", value=40), one_node(SERIES))
    y, m = lab.window([0, 2], P=3, H=2)
    assert tuple(y.shape) == (2, 2, 1)
    assert y[:, :, 0].tolist() == [[0, 1], [0, 0]] and m[:, :, 0].tolist() == [[True, True], [True, True]]


def _events_data():
    values = np.full((8, 2, 1), 50.0, np.float32)
    values[3, 1, 0] = NAN
    ev = pd.DataFrame({"start": [INDEX[2]], "end": [INDEX[4]], "node": ["b"], "label": [1]})
    return STData.from_values(values, INDEX, ["a", "b"], ["speed"], events=ev)


def test_given_simulator_incidents():
    lab = build_labels(EventsConfig(rule="given", source="simulator"), _events_data())
    assert lab.labels[:, 1].tolist() == [0, 0, 1, 1, 1, 0, 0, 0]
    assert lab.labels[:, 0].sum() == 0
    assert lab.mask.all()  # the incident is known even where the sensor is missing
    # incidents cut by data.time_range are clipped to the series; those wholly outside are dropped
    data = _events_data()
    data.events = pd.DataFrame({"start": [INDEX[0] - pd.Timedelta("1h"), INDEX[6], INDEX[0] - pd.Timedelta("2h")],
                                "end": [INDEX[1], INDEX[7] + pd.Timedelta("1h"), INDEX[0] - pd.Timedelta("1h")],
                                "node": ["a", "b", "a"], "label": [1, 1, 1]})
    lab = build_labels(EventsConfig(rule="given", source="simulator"), data)
    assert lab.labels[:, 0].tolist() == [1, 1, 0, 0, 0, 0, 0, 0]
    assert lab.labels[:, 1].tolist() == [0, 0, 0, 0, 0, 0, 1, 1]


def test_given_event_file_records_and_intervals(tmp_path):
    data = _events_data()
    f = tmp_path / "ev.csv"
    f.write_text("timestamp,node,label\n2024-01-01 00:10,a,1\n2024-01-01 00:12,b,2\n")
    lab = build_labels(EventsConfig(rule="given", source="file", path=str(f)), data)
    assert lab.num_classes == 3
    assert lab.labels[2].tolist() == [1, 2] and lab.labels.sum() == 3  # 00:12 falls in the 00:10 step
    f2 = tmp_path / "iv.csv"
    f2.write_text("start,end,node,label\n2024-01-01 00:05,2024-01-01 00:15,a,1\n")
    lab = build_labels(EventsConfig(rule="given", source="file", path=str(f2)), data)
    assert lab.labels[:, 0].tolist() == [0, 1, 1, 1, 0, 0, 0, 0]


def test_given_event_file_bad_input(tmp_path):
    data = _events_data()
    bad_node = tmp_path / "n.csv"
    bad_node.write_text("timestamp,node,label\n2024-01-01 00:10,zz,1\n")
    with pytest.raises(DataError, match="unknown node id.*zz"):
        build_labels(EventsConfig(rule="given", source="file", path=str(bad_node)), data)
    late = tmp_path / "t.csv"
    late.write_text("timestamp,node,label\n2024-01-02 00:10,a,1\n")
    with pytest.raises(DataError, match="outside the data's time range"):
        build_labels(EventsConfig(rule="given", source="file", path=str(late)), data)
    cols = tmp_path / "c.csv"
    cols.write_text("time,node,label\n2024-01-01 00:10,a,1\n")
    with pytest.raises(DataError, match="no column"):
        build_labels(EventsConfig(rule="given", source="file", path=str(cols)), data)


def test_given_column_of_a_long_file(tmp_path):
    rows = ["t,sensor,speed,incident"]
    for i, ts in enumerate(INDEX):
        for n in ("a", "b"):
            inc = "" if (n == "a" and i == 5) else str(int(n == "b" and i in (1, 2)))
            rows.append(f"{ts},{n},{50 + i},{inc}")
    f = tmp_path / "long.csv"
    f.write_text("\n".join(rows) + "\n")
    dcfg = DataConfig(source="csv-long", path=str(f), time_column="t", node_column="sensor", target=["speed"])
    data = load_data(dcfg)
    e = EventsConfig(rule="given", source="column", column="incident")
    lab = build_labels(e, data, data_cfg=dcfg)
    b = data.nodes.index("b")
    a = data.nodes.index("a")
    assert lab.labels[:, b].tolist() == [0, 1, 1, 0, 0, 0, 0, 0]
    assert not lab.mask[5, a] and lab.mask.sum() == 15  # the blank cell is unknown
    with pytest.raises(DataError, match="no column.*'crash'"):
        build_labels(EventsConfig(rule="given", source="column", column="crash"), data, data_cfg=dcfg)


def test_missing_target_column_is_named():
    with pytest.raises(ConfigError, match="events.target: 'pm25' is not a column"):
        build_labels(EventsConfig(rule="threshold", target="pm25", value=1), one_node(SERIES))


def _wd(values, P=2, H=2):
    cfg = DataConfig(source="builtin", window=WindowConfig(input=P, horizon=H), split=[0.5, 0.25, 0.25])
    return prepare(one_node(values), cfg)


def test_no_positive_or_negative_in_train_is_an_error():
    series = [50.0, 55.0] * 10 + [30.0] * 20
    wd = _wd(series)  # the train part (first 20 steps) holds no speed below 40 (and varies: not a stuck sensor)
    lab = build_labels(EventsConfig(rule="threshold", op="<", value=40), wd.data)
    with pytest.raises(DataError, match="no positive .event. example in the train part"):
        check_train_labels(lab, wd)
    lab = build_labels(EventsConfig(rule="threshold", op="<", value=100), wd.data)
    with pytest.raises(DataError, match="no negative"):
        check_train_labels(lab, wd)
    wd = _wd(([50.0] * 3 + [30.0]) * 10)
    lab = build_labels(EventsConfig(rule="threshold", op="<", value=40), wd.data)
    assert check_train_labels(lab, wd).tolist() == [13, 5]  # steps 2..19 are scored by the train windows


def test_class_weights():
    assert class_weights("auto", np.array([90, 10])) == pytest.approx([100 / 180, 100 / 20])
    assert class_weights("none", np.array([90, 10])) is None
    assert class_weights([1, 3], np.array([90, 10])) == [1.0, 3.0]
    with pytest.raises(ConfigError, match="2 classes"):
        class_weights([1, 2, 3], np.array([90, 10]))


@pytest.mark.parametrize("events, match", [
    ({"rule": "threshold"}, "events.value"),
    ({"rule": "bands", "edges": [5, 3]}, "increase"),
    ({"rule": "treshold", "value": 1}, "did you mean 'threshold'"),
    ({"rule": "threshold", "value": 1, "within": 0}, "events.within"),
    ({"rule": "threshold", "value": 1, "op": "=="}, "events.op"),
    ({"rule": "given", "source": "file"}, "events.path"),
    ({"rule": "given", "source": "simulator"}, "synthetic-traffic"),
    ({"rule": "given", "source": "file", "path": "x.csv", "teacher_kind": "forecast"}, "teacher_kind"),
    ({"rule": "threshold", "value": 1, "thresold": 2}, "unknown key config.events.thresold"),
    ({"rule": "threshold", "value": 1, "class_weights": "balanced"}, "class_weights"),
])
def test_events_config_errors(events, match):
    with pytest.raises(ConfigError, match=match):
        parse_config({"task": "classify", "events": events})


def test_classify_needs_events():
    with pytest.raises(ConfigError, match="events section"):
        parse_config({"task": "classify"})
    cfg = parse_config({"task": "classify", "events": {"rule": "threshold", "value": 40, "class_weights": [1, 5]}})
    assert cfg.events.value == 40.0 and cfg.events.class_weights == [1.0, 5.0]
