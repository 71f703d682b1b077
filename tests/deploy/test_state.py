"""The rolling window and its store: per-node order, rollback, the round trip, refusal of a file that is
not this model's window, one server per file, migration of version-1 and version-2 files."""

from __future__ import annotations

import io
import sqlite3

import numpy as np
import pytest

from stkd.deploy.state import RollingWindow, StateError, WindowConflict, WindowStore

NODES = ["a", "b", "c"]


def times(pos):
    return [f"step {int(p)}" for p in pos]


def _window(seed: int = 0) -> RollingWindow:
    rng = np.random.default_rng(seed)
    w = RollingWindow(4, 3, 2)
    for pos in (10, 11, 13):  # a jump: step 12 stays missing
        w.put(pos, np.array([0, 2]), rng.normal(size=(2, 2)).astype(np.float32))
    return w


def _same(a: RollingWindow, b: RollingWindow) -> None:
    np.testing.assert_array_equal(a.values, b.values)  # NaN in the same places too
    np.testing.assert_array_equal(a.carry, b.carry)
    np.testing.assert_array_equal(a.seen, b.seen)
    assert (a.latest, a.first, a.known_from, a.version) == (b.latest, b.first, b.known_from, b.version)


def _store(path, model="m", P=4, nodes=NODES, **kw) -> WindowStore:
    return WindowStore(path, model, P, len(nodes), 2, nodes, **kw)


def test_order_is_per_node_within_the_window():
    """Node b reports step 12 after node a reported step 14: accepted (issue 17: one node's later step
    used to refuse every other node's earlier one). A node's own order, duplicates and steps older than
    the window are still refused."""
    w = RollingWindow(4, 3, 1)
    one = np.ones((1, 1), np.float32)
    w.put(10, np.array([0, 1, 2]), np.ones((3, 1), np.float32))
    w.put(14, np.array([0]), 2 * one)
    w.check(12, np.array([1]), NODES, times)  # b's late reading fits
    w.put(12, np.array([1]), 3 * one)
    assert w.values[w.L - 1 - 2, 1, 0] == 3 and w.latest == 14
    with pytest.raises(WindowConflict, match="out of order: node 'a' already has a reading at step 14"):
        w.check(13, np.array([0]), NODES, times)
    with pytest.raises(WindowConflict, match="duplicate"):
        w.check(12, np.array([1]), NODES, times)
    w.put(30, np.array([2]), one)  # the window moves on: steps before 23 are gone
    with pytest.raises(WindowConflict, match="too old"):
        w.check(22, np.array([1]), NODES, times)
    w.check(23, np.array([1]), NODES, times)


def test_the_model_reads_the_last_p_steps_and_the_readings_before_them():
    w = RollingWindow(3, 2, 1)
    for pos, v in ((0, 1.0), (1, 2.0), (2, np.nan), (3, 4.0), (4, np.nan), (5, np.nan)):
        w.put(pos, np.array([0]), np.array([[v]], np.float32))
    values, pos, carry = w.model_input()
    np.testing.assert_array_equal(pos, [3, 4, 5])
    np.testing.assert_array_equal(values[:, 0, 0], [4.0, np.nan, np.nan])
    assert carry[0, 0] == 2.0 and np.isnan(carry[1, 0])  # node 0's last reading before step 3
    w.put(9, np.array([1]), np.array([[7.0]], np.float32))  # steps 0..3 leave the window: folded
    assert w.carry[0, 0] == 4.0 and w.known_from == 4


def test_rollback_restores_the_window_exactly():
    """Rolling back by up to P steps gives the window as it was, carry included; further back is refused."""
    rng = np.random.default_rng(1)
    w = RollingWindow(3, 2, 1)
    snapshots = {}
    for pos in range(20):
        w.put(pos, np.array([0, 1]), rng.normal(size=(2, 1)).astype(np.float32))
        snapshots[pos] = w.model_input()
    assert w.rollback(17, times) == 4  # steps 18 and 19 of two nodes
    for got, want in zip(w.model_input(), snapshots[17]):
        np.testing.assert_array_equal(got, want)
    w.check(18, np.array([0]), NODES, times)  # the dropped steps can be posted again
    with pytest.raises(WindowConflict, match="cannot roll back to step 13.*step 16 or later"):
        w.rollback(13, times)
    assert w.rollback(-5, times) == 8 and w.latest is None  # before the first post: empty (4 steps held)


def test_a_rollback_that_empties_the_window_keeps_the_version_counting_up():
    """The service caches its forecast under (version, latest): a rollback before the first post restarted
    the version at 0, so posting the same steps again reached a cached key with other readings."""
    w = RollingWindow(3, 2, 1)
    keys = set()
    for pos in range(3):
        w.put(pos, np.array([0, 1]), np.ones((2, 1), np.float32))
        keys.add((w.version, w.latest))
    version = w.version
    w.rollback(-1, times)
    assert w.latest is None and w.version > version
    for pos in range(3):
        w.put(pos, np.array([0, 1]), np.zeros((2, 1), np.float32))
        assert (w.version, w.latest) not in keys


def test_round_trip_and_the_newest_save_wins(tmp_path):
    path = tmp_path / "state.sqlite"
    store = _store(path)
    assert store.load() is None  # nothing saved yet
    first, second = _window(0), _window(1)
    store.save(first)
    store.save(second)
    store.close()
    store = _store(path)
    _same(store.load(), second)  # as a restarted service would
    store.close()
    assert sqlite3.connect(path).execute("SELECT count(*) FROM window").fetchone()[0] == 1


def test_a_second_store_on_the_same_file_is_refused(tmp_path):
    """Two servers on one state file overwrote each other's window (issue 17); the second is refused now."""
    path = tmp_path / "state.sqlite"
    first = _store(path).open()
    with pytest.raises(StateError, match=r"in use by another stkd serve \(pid \d+"):
        _store(path).open()
    first.close()
    _store(path).open().close()  # free again once the first is closed


def test_another_models_window_is_an_error_and_kept(tmp_path):
    """A window of another model, node order or window length is refused, not silently replaced."""
    path = tmp_path / "state.sqlite"
    store = _store(path)
    store.save(_window())
    store.close()
    before = path.read_bytes()
    for kw in ({"model": "other"}, {"nodes": ["a", "c", "b"]}, {"P": 5}):
        store = _store(path, **kw)
        with pytest.raises(StateError, match="belongs to another model.*--reset-state"):
            store.load()
        store.close()
    assert path.read_bytes() == before


@pytest.mark.parametrize("content", [b"my notes, not a database\n" * 100,
                                     b"SQLite format 3\x00" + b"\x07" * 4000])
def test_a_file_that_is_not_a_window_is_an_error_and_left_alone(tmp_path, content):
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(StateError, match=f"state file {path} cannot be used.*--reset-state"):
        _store(path).load()
    assert path.read_bytes() == content


def test_a_window_whose_steps_disagree_is_an_error_at_load_and_left_alone(tmp_path):
    """latest, first and known_from are set together by the first post; a file with one of them empty (edited
    by hand, or damaged) is refused when the service starts, not served until a post fails on it."""
    import json

    path = tmp_path / "state.sqlite"
    store = _store(path)
    store.save(_window())
    store.close()
    db = sqlite3.connect(path)
    meta = json.loads(db.execute("SELECT meta FROM window").fetchone()[0])
    db.execute("UPDATE window SET meta = ?", (json.dumps(meta | {"known_from": None}),))
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(StateError, match=rf"state file {path} cannot be used: the saved window's steps are "
                                         r"inconsistent \(latest 13, first 10, known_from empty\).*--reset-state"):
        _store(path).load()
    assert path.read_bytes() == before


def test_reset_moves_the_old_file_aside(tmp_path):
    path = tmp_path / "state.sqlite"
    path.write_bytes(b"garbage" * 100)
    store = _store(path).open(reset=True)
    assert store.load() is None
    store.save(_window())
    store.close()
    (aside,) = tmp_path.glob("state.sqlite.bad-*")
    assert aside.read_bytes() == b"garbage" * 100


def test_a_failed_save_is_an_error(tmp_path):
    """A locked database fails the save within the busy timeout (it used to wait 5 s and then switch
    persistence off); the saved window stays the last good one."""
    path = tmp_path / "state.sqlite"
    store = _store(path)
    store.save(_window(0))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StateError, match="cannot save the rolling window.*locked"):
        store.save(_window(1))
    other.execute("ROLLBACK")
    other.close()
    store.close()
    store = _store(path)
    _same(store.load(), _window(0))
    store.close()


def test_a_version_1_npz_is_read_once_and_kept(tmp_path, version_1_npz):
    w = _window()
    buf = io.BytesIO(version_1_npz(w, "m", NODES))
    path = tmp_path / "state-m.npz"
    path.write_bytes(buf.getvalue())
    store = _store(path)
    loaded = store.load()
    for got, want in zip(loaded.model_input(), w.model_input()):
        np.testing.assert_array_equal(got, want)
    assert (tmp_path / "state-m.npz.v1").read_bytes() == buf.getvalue()  # the old file is kept, renamed
    store.close()
    store = _store(path)
    _same(store.load(), loaded)  # now from SQLite at the same path
    store.close()


def test_the_earlier_default_npz_is_read_when_the_sqlite_file_is_new(tmp_path, version_1_npz):
    """Version 1 kept the window in ``state-<model>.npz`` by default; the new default file starts from it."""
    w, old = _window(), tmp_path / "state-m.npz"
    old.write_bytes(version_1_npz(w, "m", NODES))
    new = tmp_path / "state-m.sqlite"
    store = _store(new, legacy=old)
    loaded = store.load()
    np.testing.assert_array_equal(loaded.model_input()[0], w.model_input()[0])
    store.close()
    assert not old.exists() and (tmp_path / "state-m.npz.v1").read_bytes() == version_1_npz(w, "m", NODES)
    store = _store(new, legacy=old)
    _same(store.load(), loaded)  # from SQLite now
    store.close()
    # once the SQLite file exists, an .npz at the old path is not read (the newer window wins)
    old.write_bytes(version_1_npz(_window(5), "m", NODES))
    store = _store(new, legacy=old)
    _same(store.load(), loaded)
    store.close()
    assert old.read_bytes() == version_1_npz(_window(5), "m", NODES)


def test_a_version_2_file_is_upgraded_keeping_its_order(tmp_path, version_2_sqlite):
    """Version 2 refused every step before the latest: after the upgrade a node that posted at a step
    still cannot post there again, and the forecast input is the same."""
    w = _window()
    path = tmp_path / "state.sqlite"
    version_2_sqlite(path, w, "m", NODES)
    store = _store(path)
    loaded = store.load()
    for got, want in zip(loaded.model_input(), w.model_input()):
        np.testing.assert_array_equal(got, want)
    assert (loaded.latest, loaded.steps) == (w.latest, w.steps)
    with pytest.raises(WindowConflict, match="duplicate"):
        loaded.check(13, np.array([0]), NODES, times)
    loaded.check(13, np.array([1]), NODES, times)  # b never posted at step 13
    store.save(loaded)
    store.close()
    store = _store(path)
    _same(store.load(), loaded)
    store.close()
