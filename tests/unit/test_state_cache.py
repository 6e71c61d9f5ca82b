"""The cached dataset records: kept across ledger transactions, dropped by any other write."""

from __future__ import annotations

from pathlib import Path

from saferoom.state import StateStore


def test_ledger_transactions_keep_the_cache_and_other_writes_drop_it(tmp_path: Path) -> None:
    state = StateStore(tmp_path / "state.duckdb")
    try:
        state.datasets()
        kept = state._cached
        assert kept is not None
        with state.transaction(keeps_datasets=True):
            pass
        assert state._cached is kept
        state.datasets()
        assert state._cached is kept  # served from the cache, not read again
        with state.transaction():
            pass
        state.datasets()
        assert state._cached is not kept  # any other transaction may have changed a record
    finally:
        state.close()
