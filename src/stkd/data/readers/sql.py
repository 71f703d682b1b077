"""``sql``: long records ``(time, node, values...)`` from a database, through the long reader's checks.

Engines (:data:`stkd.names.SQL_SCHEMES`):

- DuckDB, embedded (the ``sql`` extra installs it): ``duckdb:///data/file.duckdb`` (a relative path
  after the third slash, ``duckdb:////abs/file.duckdb`` absolute; opened read-only) or ``duckdb://`` in
  memory, where ``query`` reads files itself, e.g.
  ``SELECT * FROM read_parquet('data/**/*.parquet', hive_partitioning=true)``;
- PostgreSQL through psycopg 3: ``postgresql://user:password@host:port/database`` (libpq URI; the
  session is read-only).

Exactly one of ``data.query`` and ``data.table`` names the records. The result goes through
:func:`stkd.data.readers.long.long_frame` (the checks of ``csv-long``: columns, blank node ids,
timestamps, duplicates, a regular grid), so a bad column or timestamp reads the same as from a file.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pandas as pd

from stkd.data.container import STData
from stkd.data.readers.common import _Rows, _short
from stkd.data.readers.long import long_frame
from stkd.errors import ConfigError, DataError
from stkd.names import SQL_SCHEMES

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")


def redact(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def sql_statement(query: str | None, table: str | None) -> str:
    """The SELECT to run: ``query`` as given, or every column of ``table`` (a checked, quoted name)."""
    if bool(query) == bool(table):
        raise ConfigError("data.query / data.table: source sql needs exactly one of them (a SELECT, or a "
                          "table of long records)")
    if query:
        return query
    assert table is not None  # exactly one of them is set
    if not _TABLE.match(table):
        raise ConfigError(f"data.table: {table!r} is not a table name (letters, digits, _ ; optionally schema.table)")
    return "SELECT * FROM " + ".".join(f'"{p}"' for p in table.split("."))


def _duckdb_frame(url: str, statement: str, base_dir: Path | None, table: str | None) -> pd.DataFrame:
    try:
        import duckdb  # optional extra [sql]
    except ImportError:
        raise ConfigError('data.url: duckdb:// needs the duckdb package: pip install "stkd[sql]"') from None
    rest = url[len("duckdb://"):]
    target = rest.removeprefix("/")  # duckdb:///rel.db -> rel.db, duckdb:////abs -> /abs
    if target in ("", ":memory:"):
        con = duckdb.connect(":memory:")
    else:
        path = Path(target).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        if not path.is_file():
            raise DataError(f"data.url {url!r}: no such DuckDB file {path}")
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as e:
            raise DataError(f"data.url {url!r}: cannot open {path} as a DuckDB database ({_short(e)})") from None
    try:
        if base_dir is not None:  # relative file paths in the query: from the config's folder
            con.execute("SET file_search_path = ?", [str(base_dir)])
        return con.execute(statement).fetch_df()
    except duckdb.CatalogException as e:
        key = f"data.table {table!r}" if table else "data.query"
        raise DataError(f"{key}: {_short(e)} (in {url})") from None
    except duckdb.Error as e:
        raise DataError(f"data.query: DuckDB refused it ({_short(e)}) (in {url})") from None
    finally:
        con.close()


def _postgres_frame(url: str, statement: str, table: str | None) -> pd.DataFrame:
    try:
        import psycopg  # optional extra [sql]
    except ImportError:
        raise ConfigError('data.url: postgresql:// needs psycopg: pip install "stkd[sql]"') from None
    shown = redact(url)
    try:
        conn = psycopg.connect(url, connect_timeout=10)
    except (psycopg.Error, ValueError) as e:
        raise DataError(f"data.url {shown!r}: cannot connect ({_short(e)})") from None
    try:
        conn.read_only = True  # the reader never writes
        with conn.cursor() as cur:
            cur.execute(statement)
            if cur.description is None:
                raise DataError("data.query: the statement returned no rows and no columns; it must be a SELECT")
            cols = [d.name for d in cur.description]
            rows = cur.fetchall()
    except psycopg.errors.UndefinedTable as e:
        key = f"data.table {table!r}" if table else "data.query"
        raise DataError(f"{key}: no such table in {shown} ({_short(e)})") from None
    except psycopg.Error as e:
        raise DataError(f"data.query: PostgreSQL refused it ({_short(e)}) (in {shown})") from None
    finally:
        conn.close()
    df = pd.DataFrame.from_records(rows, columns=cols)
    for c in df.columns:  # NUMERIC arrives as Decimal: numbers, as from any other source
        if df[c].dtype == object and df[c].map(lambda v: isinstance(v, decimal.Decimal)).any():
            df[c] = df[c].map(lambda v: float(v) if isinstance(v, decimal.Decimal) else v).infer_objects()
    return df


def read_sql(url: str | None, *, query: str | None = None, table: str | None = None,
             time_column: str | None, node_column: str | None, target: Sequence[str] = (),
             covariates: Sequence[str] = (), encode: Sequence[str] = (), freq: str | None = None,
             duplicates: str = "error", null_value: float | None = None, name: str | None = None,
             base_dir: Path | None = None) -> STData:
    """Long records from a database (see the module doc), pivoted to ``[T, N, F]`` as ``csv-long`` does."""
    if not url:
        raise ConfigError("data.url: source sql needs a database URL (duckdb:///file.duckdb, duckdb://, or "
                          "postgresql://user@host:port/db)")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("postgres", "postgresql+psycopg"):
        scheme = "postgresql"
    if scheme not in SQL_SCHEMES:
        raise ConfigError(f"data.url {redact(url)!r}: unknown database; expected one of "
                          f"{', '.join(s + '://...' for s in SQL_SCHEMES)}")
    if not time_column or not node_column:
        raise ConfigError("data.time_column / data.node_column: source sql needs both (the timestamp and sensor "
                          "id columns of the records)")
    statement = sql_statement(query, table)
    if scheme == "duckdb":
        df = _duckdb_frame(url, statement, base_dir, table)
    else:
        df = _postgres_frame(url.replace("postgresql+psycopg://", "postgresql://", 1), statement, table)
    where = f"data.table {table!r}" if table else "data.query"
    return long_frame(df, _Rows(Path(where)), where, time_column=time_column, node_column=node_column,
                      target=target, covariates=covariates, encode=encode, freq=freq, duplicates=duplicates,
                      null_value=null_value, name=name or (table or "sql"),
                      meta={"source": "sql", "url": redact(url)})
