"""Finding runs by the first characters of their id (what ``planloop show 3f2a`` reads),
on every backend; and on SQLite, by an index search rather than a scan."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from planloop.engine.store import SQLiteStore
from tests.engine._store_harness import HARNESSES, T0, Harness

IDS = ["3f2a91", "3f2a92", "3f7c04", "3F7c05", "b1e5d0", "a%b", "axb", "a_b", "a*b", "a?b", "a[b"]


@pytest.fixture(params=sorted(HARNESSES))
def db(request: pytest.FixtureRequest) -> Harness:
    return HARNESSES[request.param](request)


def test_the_runs_whose_id_starts_with_a_prefix_by_id(db: Harness) -> None:
    with db.open() as store:
        for run_id in IDS:
            store.create_run(run_id, name=f"name of {run_id}", started_at=T0)

        def found(prefix: str, limit: int = 10) -> list[str]:
            return [run.run_id for run in store.find_runs(prefix, limit=limit)]

        assert found("3f") == ["3f2a91", "3f2a92", "3f7c04"]  # case matters
        assert found("3F") == ["3F7c05"]
        assert found("3f2a", limit=1) == ["3f2a91"]
        assert found("3f2a91") == ["3f2a91"]
        assert found("3f2a911") == []
        assert found("zz") == []
        for wildcard in "%_*?[":  # no character is a wildcard
            assert found(f"a{wildcard}") == [f"a{wildcard}b"], wildcard
        assert found("a") == sorted(x for x in IDS if x.startswith("a"))
        assert len(found("", limit=100)) == len(IDS)
        [run] = store.find_runs("b1")
        assert (run.run_id, run.name, run.started_at) == ("b1e5d0", "name of b1e5d0", T0)
        with pytest.raises(ValueError, match="limit must be >= 1, got 0"):
            store.find_runs("3f", limit=0)


def test_sqlite_finds_them_by_a_search_of_the_index_of_run_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "runs.db"
    sent: list[tuple[str, Sequence[object]]] = []
    with SQLiteStore(path) as store:
        for n in range(200):
            store.create_run(f"{n:032x}", name="n", started_at=T0)
        backend = store.backend
        read = backend._read  # type: ignore[attr-defined]

        def spy(sql: str, params: Sequence[object]) -> list[object]:
            sent.append((sql, params))
            return read(sql, params)  # type: ignore[no-any-return]

        monkeypatch.setattr(backend, "_read", spy)
        assert [run.run_id for run in store.find_runs(f"{199:032x}"[:-1])] == [
            f"{n:032x}" for n in range(192, 200)
        ]
    [(sql, params)] = sent
    conn = sqlite3.connect(path)
    plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    conn.close()
    [step] = plan  # "SEARCH runs USING INDEX sqlite_autoindex_runs_1 (run_id>? AND run_id<?)"
    assert step.startswith("SEARCH") and "(run_id>? AND run_id<?)" in step, plan
