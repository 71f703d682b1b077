"""stkd predict RUN_DIR --input FILE --out FILE: batch forecasts in long form, same numbers as in-process."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from stkd.cli import main

COLUMNS = ["issued_at", "target_time", "node", "horizon", "value"]


def wide_input(data, lo: int, hi: int) -> pd.DataFrame:
    frame = pd.DataFrame(data.values[lo:hi, :, 0], columns=data.nodes)
    frame.insert(0, "timestamp", data.index[lo:hi])
    return frame


def in_process(model, wd, data, lo: int, hi: int) -> dict:
    """Reference forecasts for windows ending inside [lo, hi) by the training pipeline, keyed by issue time.

    Windows are compared once every node has had a reading in the file: the file starts at ``lo``, so
    a gap that training filled from readings before ``lo`` cannot be reproduced from the file alone.
    """
    P = wd.P
    first = int((~np.isnan(data.values[lo:hi])).argmax(axis=0).max())  # each node's first reading, the latest
    starts = np.array([s for s in range(lo + first, hi - P + 1) if s + P + wd.H <= data.num_steps])
    b = wd.batch(starts)
    with torch.no_grad():
        pred = wd.scaler.inverse(model(b.x, b.tod, b.dow)["pred"], feature_slice=slice(0, 1)).numpy()
    return {data.index[s + P - 1]: pred[i, :, :, 0] for i, s in enumerate(starts)}  # [H, N]


def test_predict_wide_csv_matches_training_pipeline(run_dir, prepared, predictor, tmp_path, capsys):
    data, wd = prepared
    lo, hi = int(wd.ranges["test"][0]), int(wd.ranges["test"][0]) + 60
    src = tmp_path / "recent.csv"
    wide_input(data, lo, hi).to_csv(src, index=False)
    out = tmp_path / "f.csv"
    assert main(["predict", str(run_dir), "--input", str(src), "--out", str(out)]) == 0
    assert "forecast(s)" in capsys.readouterr().out
    df = pd.read_csv(out, parse_dates=["issued_at", "target_time"], dtype={"node": str})
    assert list(df.columns) == COLUMNS
    assert df["issued_at"].nunique() == hi - lo - wd.P + 1 and len(df) == (hi - lo - wd.P + 1) * wd.H * 10
    ref = in_process(predictor.model, wd, data, lo, hi)
    assert len(ref) > 10
    for issued, want in ref.items():
        got = df[df["issued_at"] == issued].pivot(index="horizon", columns="node", values="value")[data.nodes]
        np.testing.assert_allclose(got.to_numpy(), want, rtol=1e-5, atol=1e-3)


def test_every_last_parquet_and_long_input(run_dir, prepared, tmp_path):
    data, wd = prepared
    lo, hi = int(wd.ranges["val"][0]), int(wd.ranges["val"][0]) + 40
    wide = wide_input(data, lo, hi)
    long = wide.melt(id_vars="timestamp", var_name="node", value_name="value").dropna()
    long_csv = tmp_path / "long.csv"
    long.to_csv(long_csv, index=False)
    pq_in = tmp_path / "long.parquet"
    long.to_parquet(pq_in)
    wide_csv = tmp_path / "wide.csv"
    wide.to_csv(wide_csv, index=False)

    assert main(["predict", str(run_dir), "--input", str(wide_csv), "--out", str(tmp_path / "a.parquet"),
                 "--every", "5"]) == 0
    a = pd.read_parquet(tmp_path / "a.parquet")
    issued = sorted(a["issued_at"].unique())
    assert pd.Timestamp(issued[-1]) == data.index[hi - 1] and len(issued) == len(range(hi - 1, lo + wd.P - 2, -5))
    assert main(["predict", str(run_dir), "--input", str(long_csv), "--out", str(tmp_path / "b.csv"), "--last"]) == 0
    assert main(["predict", str(run_dir), "--input", str(pq_in), "--out", str(tmp_path / "c.csv"), "--last",
                 "--model", "gwnet"]) == 0
    b = pd.read_csv(tmp_path / "b.csv", parse_dates=["issued_at"], dtype={"node": str})
    c = pd.read_csv(tmp_path / "c.csv", parse_dates=["issued_at"], dtype={"node": str})
    assert b["issued_at"].nunique() == 1 and len(b) == wd.H * 10 and len(c) == len(b)
    last = a[a["issued_at"] == issued[-1]].sort_values(["node", "horizon"])["value"].to_numpy()
    np.testing.assert_allclose(b.sort_values(["node", "horizon"])["value"].to_numpy(), last, rtol=1e-5)
    assert not np.allclose(c["value"].to_numpy(), b["value"].to_numpy())  # another model


def test_refuses_to_overwrite_and_errors_are_clear(run_dir, prepared, tmp_path, capsys):
    data, wd = prepared
    lo = int(wd.ranges["test"][0])
    src = tmp_path / "in.csv"
    wide_input(data, lo, lo + 20).to_csv(src, index=False)
    out = tmp_path / "out.csv"
    out.write_text("precious\n")
    assert main(["predict", str(run_dir), "--input", str(src), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_text() == "precious\n"
    assert main(["predict", str(run_dir), "--input", str(src), "--out", str(out), "--overwrite"]) == 0
    assert out.read_text().startswith("issued_at,target_time,node,horizon,value")

    bad = tmp_path / "missing_node.csv"
    wide_input(data, lo, lo + 20).drop(columns=data.nodes[2]).to_csv(bad, index=False)
    assert main(["predict", str(run_dir), "--input", str(bad), "--out", str(tmp_path / "x.csv")]) == 2
    assert "nodes are not in the file" in capsys.readouterr().err
    short = tmp_path / "short.csv"
    wide_input(data, lo, lo + 5).to_csv(short, index=False)
    assert main(["predict", str(run_dir), "--input", str(short), "--out", str(tmp_path / "x.csv")]) == 2
    assert "at least 12" in capsys.readouterr().err
    hourly = tmp_path / "hourly.csv"
    wide_input(data, lo, lo + 400).iloc[::12].to_csv(hourly, index=False)
    assert main(["predict", str(run_dir), "--input", str(hourly), "--out", str(tmp_path / "x.csv")]) == 2
    assert "step is" in capsys.readouterr().err
    assert main(["predict", str(run_dir), "--input", str(src), "--out", str(tmp_path / "x.json")]) == 2
    assert ".csv or .parquet" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # nothing half-written left


def test_windows_without_readings_are_skipped(run_dir, prepared, tmp_path, capsys):
    data, wd = prepared
    lo = int(wd.ranges["test"][0])
    frame = wide_input(data, lo, lo + 40)
    frame.iloc[:15, 1:] = np.nan  # the first 15 steps hold nothing
    src = tmp_path / "gappy.csv"
    frame.to_csv(src, index=False)
    out = tmp_path / "g.csv"
    assert main(["predict", str(run_dir), "--input", str(src), "--out", str(out)]) == 0
    assert "skipped 4 window(s)" in capsys.readouterr().out
    assert pd.read_csv(out)["issued_at"].nunique() == 40 - 12 + 1 - 4


@pytest.mark.parametrize("extra", [["--every", "0"]])
def test_bad_flags(run_dir, tmp_path, extra, capsys):
    src = tmp_path / "none.csv"
    assert main(["predict", str(run_dir), "--input", str(src), "--out", str(tmp_path / "o.csv"), *extra]) == 2


def test_an_exported_folder_is_refused_before_its_model_loads(run_dir, tmp_path, capsys):
    """stkd predict reads --input through the run's data config: an exported folder has none. It is refused
    before its model file is loaded (a TorchScript model.pt would run its code as it loads)."""
    from stkd.deploy.export import export_model

    export_model(run_dir, "torchscript", run_dir / "ts", windows=4)
    (run_dir / "ts" / "model.pt").write_bytes(b"not even TorchScript")
    assert main(["predict", str(run_dir / "ts"), "--input", str(run_dir / "config.yaml"),
                 "--out", str(tmp_path / "f.csv")]) == 2
    assert "is an exported folder; stkd predict reads --input the way the run read its data" in capsys.readouterr().err
    assert not (tmp_path / "f.csv").exists()
