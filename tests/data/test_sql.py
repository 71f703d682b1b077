"""``source: sql`` against real engines: an embedded DuckDB (a database file, and in memory over a
hive-partitioned Parquet folder) and a real PostgreSQL server started by the session fixture (the
``pgserver`` package's bundled binaries). Results must equal the same records read from a frame, and
bad URLs, tables and columns must fail with one-line errors naming the key."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stkd.api import from_frame
from stkd.config import DataConfig, GraphConfig, parse_config
from stkd.data.loaders import load_data
from stkd.errors import ConfigError, DataError
from stkd.runs import absolutize_paths

duckdb = pytest.importorskip("duckdb", reason="the sql extra (duckdb) is not installed")

T0 = pd.Timestamp("2024-03-01 00:00")


def _records() -> pd.DataFrame:
    """Hourly long records of 3 stations over 2 days, one reading missing, a covariate."""
    t = pd.date_range(T0, periods=48, freq="h")
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"ts": np.repeat(t, 3), "station": np.tile(["s1", "s2", "s3"], 48),
                       "pm": rng.uniform(5, 50, 144).round(2), "temp": rng.uniform(-5, 30, 144).round(2)})
    return df.drop(index=7).reset_index(drop=True)


def _cfg(**kw) -> DataConfig:
    base = {"source": "sql", "time_column": "ts", "node_column": "station", "target": ["pm"],
            "covariates": ["temp"], "graph": GraphConfig(method="none")}
    return DataConfig(**{**base, **kw})


def _same(got, ref) -> None:
    assert got.nodes == ref.nodes and got.index.equals(ref.index) and got.features == ref.features
    np.testing.assert_array_equal(got.mask, ref.mask)
    np.testing.assert_allclose(got.values[got.mask], ref.values[ref.mask], rtol=1e-6)


@pytest.fixture(scope="module")
def reference():
    return from_frame(_records(), time_column="ts", node_column="station", target="pm", covariates=["temp"])


@pytest.fixture(scope="module")
def duck_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("duck") / "air.duckdb"
    con = duckdb.connect(str(path))
    recs = _records()  # noqa: F841 - DuckDB reads the frame by its name
    con.execute("CREATE TABLE readings AS SELECT * FROM recs")
    con.close()
    return path


def test_duckdb_file_table_and_query(duck_file, reference):
    _same(load_data(_cfg(url=f"duckdb:///{duck_file}", table="readings")), reference)
    got = load_data(_cfg(url=f"duckdb:///{duck_file}", query="SELECT * FROM readings WHERE station <> 's3'"))
    assert got.nodes == ["s1", "s2"]
    assert got.meta["source"] == "sql"


def test_duckdb_relative_url_follows_the_config_folder(duck_file, reference, tmp_path):
    raw = {"data": {"source": "sql", "url": "duckdb:///air.duckdb", "table": "readings", "time_column": "ts",
                    "node_column": "station", "target": ["pm"], "covariates": ["temp"], "graph": {"method": "none"}}}
    cfg = absolutize_paths(parse_config(raw), duck_file.parent)
    assert cfg.data.url == f"duckdb:///{duck_file.resolve()}"
    _same(load_data(cfg.data), reference)


def test_duckdb_in_memory_over_hive_partitioned_parquet(tmp_path, reference):
    recs = _records()
    for st, part in recs.groupby("station"):
        folder = tmp_path / "lake" / f"station={st}"
        folder.mkdir(parents=True)
        part.drop(columns="station").to_parquet(folder / "part-0.parquet", index=False)
    q = "SELECT * FROM read_parquet('lake/**/*.parquet', hive_partitioning=true) ORDER BY station, ts"
    got = load_data(_cfg(url="duckdb://", query=q), base_dir=tmp_path)  # relative glob: the config's folder
    _same(got, reference)


def test_duckdb_errors_are_one_line_and_name_the_key(duck_file, tmp_path):
    with pytest.raises(DataError, match=r"data.table 'nope'.*nope") as e:
        load_data(_cfg(url=f"duckdb:///{duck_file}", table="nope"))
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match=r"no such DuckDB file"):
        load_data(_cfg(url=f"duckdb:///{tmp_path / 'missing.duckdb'}", table="readings"))
    with pytest.raises(DataError, match=r"data.table 'readings': no column\(s\) \['speed'\]"):
        load_data(_cfg(url=f"duckdb:///{duck_file}", table="readings", target=["speed"]))
    with pytest.raises(DataError, match=r"data.query: DuckDB refused it"):
        load_data(_cfg(url=f"duckdb:///{duck_file}", query="SELEKT 1"))
    with pytest.raises(ConfigError, match=r"data.url 'mysql://u:\*\*\*@h/db': unknown database"):
        load_data(_cfg(url="mysql://u:pw@h/db", table="readings"))
    with pytest.raises(ConfigError, match=r"exactly one of them"):
        load_data(_cfg(url=f"duckdb:///{duck_file}", table="readings", query="SELECT 1"))
    with pytest.raises(ConfigError, match=r"data.table: 'x; drop table y' is not a table name"):
        load_data(_cfg(url=f"duckdb:///{duck_file}", table="x; drop table y"))
    with pytest.raises(ConfigError, match=r"data.url: source sql needs a database URL"):
        load_data(_cfg(table="readings"))


# ----------------------------------------------------------------------------- PostgreSQL
@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """A real PostgreSQL server for the session (pgserver's bundled binaries), with the records in
    table ``readings`` (NUMERIC values, timestamptz times) and its connection URI."""
    pgserver = pytest.importorskip("pgserver", reason="the test extra (pgserver) is not installed")
    psycopg = pytest.importorskip("psycopg", reason="the sql extra (psycopg) is not installed")
    srv = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    uri = srv.get_uri()
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("CREATE TABLE readings (ts timestamp, station text, pm numeric(8, 2), temp double precision)")
        with conn.cursor().copy("COPY readings (ts, station, pm, temp) FROM STDIN") as cp:
            for r in _records().itertuples(index=False):
                cp.write_row((r.ts.to_pydatetime(), r.station, r.pm, r.temp))
    yield uri
    srv.cleanup()


def test_postgres_table_and_query(postgres, reference):
    _same(load_data(_cfg(url=postgres, table="readings")), reference)
    got = load_data(_cfg(url=postgres, query="SELECT ts, station, pm, temp FROM readings WHERE ts < '2024-03-02'"))
    assert got.num_steps == 24 and got.nodes == ["s1", "s2", "s3"]
    assert got.meta["url"] == postgres  # no password to hide in this one


def test_postgres_errors_name_the_key_and_hide_the_password(postgres):
    with pytest.raises(DataError, match=r"data.url 'postgresql://stkd:\*\*\*@127.0.0.1:1/db': cannot connect") as e:
        load_data(_cfg(url="postgresql://stkd:secret@127.0.0.1:1/db", table="readings"))
    assert "secret" not in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(DataError, match=r"data.table 'nope': no such table"):
        load_data(_cfg(url=postgres, table="nope"))
    with pytest.raises(DataError, match=r"data.table 'readings': no column\(s\) \['speed'\]"):
        load_data(_cfg(url=postgres, table="readings", target=["speed"]))
    with pytest.raises(DataError, match=r"data.query: PostgreSQL refused it"):
        load_data(_cfg(url=postgres, query="DELETE FROM readings"))  # the session is read-only
    assert load_data(_cfg(url=postgres, table="readings")).num_steps == 48  # nothing was deleted


def test_config_refuses_sql_without_url_or_with_both_query_and_table():
    with pytest.raises(ConfigError, match=r"^data.url: source sql needs a database URL"):
        parse_config({"data": {"source": "sql", "table": "t"}})
    with pytest.raises(ConfigError, match=r"^data.query / data.table: source sql needs exactly one"):
        parse_config({"data": {"source": "sql", "url": "duckdb://"}})
