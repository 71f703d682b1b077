"""Tests of the command line: bad input is one clear line and exit status 2 before any training or
writing; run directories are never clobbered; every --help has an example; --seed and --set; and
``stkd data inspect`` / ``stkd data query`` on Los-loop."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from stkd.cli import _overrides, apply_overrides, build_parser, main, resolve_config
from stkd.errors import ConfigError


@pytest.fixture
def write_cfg(tmp_path, los_small_config):
    """Write a small Los-loop config (with changes applied) to a YAML file; return its path."""
    def write(change=None, name="los.yaml") -> str:
        raw = los_small_config()
        if change:
            change(raw)
        path = tmp_path / name
        path.write_text(yaml.safe_dump(raw))
        return str(path)

    return write


def _fails(argv: list[str], capsys, *needles: str) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("stkd: error: ") and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


@pytest.mark.parametrize("overrides, needles", [
    (["teacher.name=gwnett"], ["unknown model 'gwnett'", "did you mean 'gwnet'"]),
    (["student.name=stdi"], ["unknown model 'stdi'", "did you mean 'stid'"]),
    (["distill.loss=hubber"], ["distill.loss", "'hubber'", "did you mean 'huber'"]),
    (["train.loss=l3"], ["train.loss", "'l3'"]),
    (["train.epoch=3"], ["train.epoch", "did you mean 'epochs'"]),
    (["student.params.hiden=[8]", "student.name=mlp"], ["params.hiden", "did you mean 'hidden'"]),
    (["data.window.horizon=400"], ["too short", "horizon 400"]),
    (["eval.horizons=[3,6,24]"], ["eval.horizons", "1..12"]),
    (["student.params.node_dim=-1"], ["student 'stid'", "does not fit the data"]),
    (["teacher.params.blocks=1"], ["gwnet", "receptive field"]),
    (["eval.baselines=[last,sesonal]"], ["eval.baselines", "did you mean 'seasonal'"]),
    (["train.max_batches=0"], ["train.max_batches", ">= 1"]),
    (["distill.feature_weight=-1"], ["distill.feature_weight", ">= 0"]),
])
def test_bad_input_is_a_clear_error_before_anything_is_written(write_cfg, tmp_path, capsys, overrides, needles):
    out = tmp_path / "run"
    argv = ["run", "--config", write_cfg(), "--out", str(out), "--quiet"]
    for o in overrides:
        argv += ["--set", o]
    _fails(argv, capsys, *needles)
    assert not out.exists()  # no run directory, so no training started


def test_unknown_section_in_the_yaml_file_suggests_the_nearest(write_cfg, tmp_path, capsys):
    def typo(raw):
        raw["teachr"] = raw.pop("teacher")

    _fails(["run", "--config", write_cfg(typo), "--out", str(tmp_path / "r"), "--quiet"], capsys,
           "unknown key", "teachr", "did you mean 'teacher'")
    _fails(["train", "--config", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "r")], capsys,
           "missing.yaml", "does not exist")


def test_train_checks_the_teacher_too(write_cfg, tmp_path, capsys):
    _fails(["train", "--config", write_cfg(), "--set", "teacher.name=staeformerr", "--out", str(tmp_path / "r"),
            "--quiet"], capsys, "did you mean 'staeformer'")
    assert not (tmp_path / "r").exists()


def test_an_existing_run_directory_is_not_overwritten(write_cfg, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("precious: true\n")
    (out / "notes.txt").write_text("mine")
    before = {p.name: p.read_text() for p in out.iterdir()}
    _fails(["run", "--config", write_cfg(), "--out", str(out), "--quiet"], capsys, str(out), "--overwrite")
    assert {p.name: p.read_text() for p in out.iterdir()} == before


def test_overwrite_refuses_a_folder_stkd_did_not_write(write_cfg, tmp_path, capsys):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"\xff\xd8")
    for flag in ("--overwrite", "--resume"):
        _fails(["run", "--config", write_cfg(), "--out", str(out), flag, "--quiet"], capsys,
               "not an stkd run directory")
        assert [p.name for p in out.iterdir()] == ["holiday.jpg"]
    (tmp_path / "afile").write_text("x")
    _fails(["run", "--config", write_cfg(), "--out", str(tmp_path / "afile"), "--quiet"], capsys,
           "not a directory")


def test_distill_from_a_folder_without_teachers_is_a_clear_error(write_cfg, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    _fails(["distill", "--teacher-run", str(tmp_path / "empty"), "--config", write_cfg(),
            "--out", str(tmp_path / "r"), "--quiet"], capsys, "not an stkd run directory")
    _fails(["evaluate", str(tmp_path / "empty")], capsys, "not an stkd run directory")
    assert not (tmp_path / "r").exists()


def _subparsers(parser: argparse.ArgumentParser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _subparsers(sub, (*prefix, name))


def test_every_help_has_an_example(capsys):
    commands = [()] + [path for path, _ in _subparsers(build_parser())]
    assert {("run",), ("train",), ("distill",), ("evaluate",), ("data", "inspect"), ("data", "query")} <= \
        set(commands)
    for path in commands:
        with pytest.raises(SystemExit) as exc:
            main([*path, "--help"])
        assert exc.value.code == 0
        text = capsys.readouterr().out
        assert "example" in text.lower(), f"stkd {' '.join(path)} --help has no example"
        assert "stkd " in text.split("example", 1)[1], path


def test_the_config_default_each_help_names_is_the_one_its_command_reads():
    helps = {path: next(a.help for a in sub._actions if a.dest == "config")
             for path, sub in _subparsers(build_parser()) if any(a.dest == "config" for a in sub._actions)}
    assert helps[("distill",)].endswith("default: the teacher run's config.yaml")  # cmd_distill reads it
    assert helps[("run",)].endswith("default: the embedded Auckland pedestrian preset")


def test_seed_flag_and_overrides(write_cfg):
    parser = build_parser()
    args = parser.parse_args(["run", "--config", write_cfg(), "--seed", "7", "--set", "train.seed=3"])
    assert resolve_config(args.config, _overrides(args)).train.seed == 7
    args = parser.parse_args(["distill", "--teacher-run", "x", "--set", "train.epochs=9"])
    assert _overrides(args) == ["train.epochs=9"]

    raw = {"student": {"name": "stid", "params": {"embed_dim": 8}}, "teacher": "gwnet"}
    out = apply_overrides(raw, ["student.name=mlp", "teacher.params.layers=3"])
    assert out["student"] == {"name": "mlp", "params": {}}  # stid's params do not follow to mlp
    assert out["teacher"] == {"name": "gwnet", "params": {"layers": 3}}
    raw = {"student": {"name": "stid", "params": {"embed_dim": 8}}}
    assert apply_overrides(raw, ["student.params.hidden=[4]", "student.name=mlp"])["student"] == \
        {"name": "mlp", "params": {"hidden": [4]}}
    raw = {"student": {"name": "stid", "params": {"embed_dim": 8}}}
    assert apply_overrides(raw, ["student.name=stid"])["student"]["params"] == {"embed_dim": 8}


def test_a_teacher_override_reaches_every_teacher_or_the_one_numbered():
    """The default preset has two teachers: ``teacher.epochs=1`` must shorten both (it set the first only,
    so the second trained its whole schedule), ``teacher.1.seed=7`` changes the second alone."""
    def teachers():
        return {"teacher": [{"name": "stid", "params": {"layers": 4}}, {"name": "stid", "params": {"layers": 4},
                                                                       "seed": 101}]}

    out = apply_overrides(teachers(), ["teacher.epochs=1", "teacher.params.layers=2"])["teacher"]
    assert [t["epochs"] for t in out] == [1, 1] and [t["params"]["layers"] for t in out] == [2, 2]
    out = apply_overrides(teachers(), ["teacher.1.seed=7", "teacher.0.inputs.lags=[1D]"])["teacher"]
    assert [t.get("seed") for t in out] == [None, 7] and out[0]["inputs"] == {"lags": ["1D"]} and "inputs" not in out[1]
    out = apply_overrides(teachers(), ["teacher.name=gwnet"])["teacher"]
    assert out == [{"name": "gwnet", "params": {}}, {"name": "gwnet", "params": {}, "seed": 101}]  # stid's params dropped
    out = apply_overrides(teachers(), ["teacher.1.name=mlp"])["teacher"]
    assert out[0]["params"] == {"layers": 4} and out[1] == {"name": "mlp", "params": {}, "seed": 101}
    with pytest.raises(ConfigError, match=r"--set teacher.2.epochs: teacher has 2 entries, numbered 0 to 1"):
        apply_overrides(teachers(), ["teacher.2.epochs=1"])
    with pytest.raises(ConfigError, match=r"--set teacher.1.epochs: teacher has one entry, numbered 0"):
        apply_overrides({"teacher": {"name": "gwnet"}}, ["teacher.1.epochs=1"])
    assert apply_overrides({"teacher": "gwnet"}, ["teacher.0.epochs=3"])["teacher"] == {"name": "gwnet", "epochs": 3}


# ------------------------------------------------------------------------------------ data commands
@pytest.fixture
def full_los(tmp_path, los_loop_dir) -> str:
    """All 207 Los-loop sensors, one day."""
    raw = {"data": {"source": "csv-wide", "path": str(los_loop_dir / "los_speed.csv"),
                    "start": "2012-03-01 00:00", "freq": "5min",
                    "locations": str(los_loop_dir / "graph_sensor_locations.csv"),
                    "time_range": ["2012-03-01 00:00", "2012-03-01 23:55"]}}
    path = tmp_path / "full.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_data_inspect_on_los_loop(write_cfg, capsys):
    cfg = write_cfg()
    assert main(["data", "inspect", cfg]) == 0
    text = capsys.readouterr().out
    for line in ("nodes         20", "steps         576", "frequency     5min", "coordinates   yes"):
        assert line in text, text
    assert main(["data", "inspect", cfg, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["nodes"], info["steps"], info["freq"], info["has_coords"]) == (20, 576, "5min", True)
    assert info["start"].startswith("2012-03-01 00:00") and info["end"].startswith("2012-03-02 23:55")
    assert 0 < info["graph_density"] <= 1


def _brute_force_within(locs: pd.DataFrame, lat: float, lon: float, radius_km: float) -> set[str]:
    la, lo = np.radians(locs["latitude"].to_numpy()), np.radians(locs["longitude"].to_numpy())
    a = (np.sin((la - np.radians(lat)) / 2) ** 2
         + np.cos(la) * np.cos(np.radians(lat)) * np.sin((lo - np.radians(lon)) / 2) ** 2)
    d = 2 * 6371.0088 * np.arcsin(np.sqrt(a))
    assert not np.any(np.abs(d - radius_km) < 0.01 * radius_km), "a sensor sits on the circle: pick another radius"
    return set(locs["sensor_id"].astype(str)[d <= radius_km])


def _listed_nodes(text: str) -> list[str]:
    return [line.split()[0] for line in text.splitlines()[1:] if line.startswith("  ")]


def test_data_query_by_radius_and_k_matches_brute_force(full_los, los_loop_dir, tmp_path, capsys):
    locs = pd.read_csv(los_loop_dir / "graph_sensor_locations.csv")
    lat, lon = locs.loc[3, "latitude"], locs.loc[3, "longitude"]  # around sensor 717447
    for radius in (1.5, 3.5):
        expected = _brute_force_within(locs, lat, lon, radius)
        assert main(["data", "query", full_los, "--lat", str(lat), "--lon", str(lon),
                     "--radius-km", str(radius)]) == 0
        text = capsys.readouterr().out
        assert set(_listed_nodes(text)) == expected and len(expected) > 1
        assert text.startswith(f"{len(expected)} nodes, 288 steps")

    out = tmp_path / "near.csv"
    argv = ["data", "query", full_los, "--lat", str(lat), "--lon", str(lon), "--k", "3",
            "--start", "2012-03-01 06:00", "--end", "2012-03-01 07:00", "--out", str(out)]
    assert main(argv) == 0
    nodes = _listed_nodes(capsys.readouterr().out)
    d = np.hypot(locs["latitude"] - lat, (locs["longitude"] - lon) * np.cos(np.radians(lat)))
    assert set(nodes) == set(locs["sensor_id"].astype(str)[np.argsort(d.to_numpy())[:3]])
    frame = pd.read_csv(out, index_col=0)
    assert frame.shape == (13, 3) and set(frame.columns) == set(nodes)
    speeds = pd.read_csv(los_loop_dir / "los_speed.csv")
    np.testing.assert_allclose(frame[nodes[0]].to_numpy(), speeds[nodes[0]].to_numpy()[72:85], rtol=1e-6)
    _fails(argv, capsys, "exists", "--overwrite")  # the CSV is not overwritten silently


def test_data_inspect_los_loop_prints_its_size(capsys):
    assert main(["data", "inspect", "los-loop"]) == 0
    out = capsys.readouterr().out
    assert "nodes         207" in out and "steps         2016" in out and "frequency     5min" in out
