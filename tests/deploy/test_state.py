"""The rolling window's store: round trip, refusal of another model's window, migration of version-1 files."""

from __future__ import annotations

import io
import logging
import sqlite3

import numpy as np

from stkd.deploy.state import RollingWindow, WindowStore

NODES = ["a", "b", "c"]


def _window(seed: int = 0) -> RollingWindow:
    rng = np.random.default_rng(seed)
    w = RollingWindow(4, 3, 2)
    for pos in (10, 11, 13):  # a jump: step 12 stays missing
        w.advance(pos)
        w.put(np.array([0, 2]), rng.normal(size=(2, 2)).astype(np.float32))
    return w


def _same(a: RollingWindow, b: RollingWindow) -> None:
    np.testing.assert_array_equal(a.values, b.values)  # NaN in the same places too
    np.testing.assert_array_equal(a.carry, b.carry)
    assert (a.latest, a.steps, a.seen) == (b.latest, b.steps, b.seen)


def test_round_trip_and_the_newest_save_wins(tmp_path):
    path = tmp_path / "state.sqlite"
    store = WindowStore(path, "m", 4, 3, 2, NODES)
    assert store.load() is None  # nothing saved yet
    first, second = _window(0), _window(1)
    store.save(first)
    store.save(second)
    store.close()
    loaded = WindowStore(path, "m", 4, 3, 2, NODES).load()  # as a restarted service would
    _same(loaded, second)
    assert sqlite3.connect(path).execute("SELECT count(*) FROM window").fetchone()[0] == 1


def test_another_models_window_is_not_resumed(tmp_path, caplog):
    path = tmp_path / "state.sqlite"
    WindowStore(path, "m", 4, 3, 2, NODES).save(_window())
    with caplog.at_level(logging.WARNING):
        assert WindowStore(path, "other", 4, 3, 2, NODES).load() is None
        assert WindowStore(path, "m", 4, 3, 2, ["a", "c", "b"]).load() is None  # same nodes, other order
        assert WindowStore(path, "m", 5, 3, 2, NODES).load() is None  # another window length
    assert caplog.text.count("belongs to another model") == 3


def test_a_version_1_npz_is_read_once_and_kept(tmp_path, version_1_npz):
    w = _window()
    buf = io.BytesIO(version_1_npz(w, "m", NODES))
    path = tmp_path / "state-m.npz"
    path.write_bytes(buf.getvalue())
    store = WindowStore(path, "m", 4, 3, 2, NODES)
    _same(store.load(), w)
    assert (tmp_path / "state-m.npz.v1").read_bytes() == buf.getvalue()  # the old file is kept, renamed
    store.close()
    _same(WindowStore(path, "m", 4, 3, 2, NODES).load(), w)  # now from SQLite at the same path


def test_the_earlier_default_npz_is_read_when_the_sqlite_file_is_new(tmp_path, version_1_npz):
    """Version 1 kept the window in ``state-<model>.npz`` by default; the new default file starts from it."""
    w, old = _window(), tmp_path / "state-m.npz"
    old.write_bytes(version_1_npz(w, "m", NODES))
    new = tmp_path / "state-m.sqlite"
    store = WindowStore(new, "m", 4, 3, 2, NODES, legacy=old)
    _same(store.load(), w)
    store.close()
    assert not old.exists() and (tmp_path / "state-m.npz.v1").read_bytes() == version_1_npz(w, "m", NODES)
    _same(WindowStore(new, "m", 4, 3, 2, NODES, legacy=old).load(), w)  # from SQLite now
    # once the SQLite file exists, an .npz at the old path is not read (the newer window wins)
    old.write_bytes(version_1_npz(_window(5), "m", NODES))
    store = WindowStore(new, "m", 4, 3, 2, NODES, legacy=old)
    _same(store.load(), w)
    assert old.read_bytes() == version_1_npz(_window(5), "m", NODES)


def test_a_file_that_is_not_a_window_is_left_alone(tmp_path, caplog):
    path = tmp_path / "notes.txt"
    path.write_text("my notes, not a database\n" * 100)
    with caplog.at_level(logging.WARNING):
        assert WindowStore(path, "m", 4, 3, 2, NODES).load() is None
    assert "not resuming" in caplog.text
    assert path.read_text() == "my notes, not a database\n" * 100
