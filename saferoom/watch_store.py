"""Watches in the state DB: their subjects, each (watch, subject, rule)'s last truth, and alerts.

One evaluation of a watch on a dataset version commits its truths, alerts and progress at once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from saferoom.state import StateStore, registered

SCHEMA = """
CREATE SEQUENCE IF NOT EXISTS watch_seq;
CREATE TABLE IF NOT EXISTS watches (
    seq BIGINT NOT NULL DEFAULT nextval('watch_seq'), id VARCHAR PRIMARY KEY,
    bank_id VARCHAR NOT NULL, purpose VARCHAR NOT NULL, rules JSON NOT NULL,
    subject_count INTEGER NOT NULL, created_at TIMESTAMPTZ NOT NULL, deleted_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS watch_subjects (
    watch_id VARCHAR NOT NULL, pos INTEGER NOT NULL, subject VARCHAR NOT NULL);
-- The dataset version each watch last evaluated: a watch behind its dataset is the work queue,
-- so a version committed while the worker was busy, or down, is still evaluated.
CREATE TABLE IF NOT EXISTS watch_progress (
    watch_id VARCHAR NOT NULL, dataset_id VARCHAR NOT NULL, version INTEGER NOT NULL);
-- Per (watch, subject, rule): truth NULL means evaluated without an answer (no record); no row
-- means no baseline yet (never evaluated, or not since consent lapsed).
CREATE TABLE IF NOT EXISTS watch_state (
    watch_id VARCHAR NOT NULL, subject VARCHAR NOT NULL, rule INTEGER NOT NULL, truth BOOLEAN);
CREATE SEQUENCE IF NOT EXISTS alert_seq;
CREATE TABLE IF NOT EXISTS alerts (
    seq BIGINT NOT NULL DEFAULT nextval('alert_seq'), watch_id VARCHAR NOT NULL,
    bank_id VARCHAR NOT NULL, subject VARCHAR NOT NULL, rule INTEGER NOT NULL,
    dataset_id VARCHAR NOT NULL, version INTEGER NOT NULL, triggered_at TIMESTAMPTZ NOT NULL);
"""
CELLS = pa.schema([("subject", pa.string()), ("rule", pa.int32()), ("truth", pa.bool_())])
_WATCH = "seq, id, bank_id, purpose, rules, subject_count, created_at"
_ACTIVE = f"SELECT {_WATCH} FROM watches WHERE deleted_at IS NULL"  # noqa: S608 (constants)


@dataclass(frozen=True)
class Watch:
    seq: int
    id: str
    bank_id: str
    purpose: str
    rules: list[dict[str, Any]]  # as the bank wrote them: {"dataset", "field", "op", "value"}
    subject_count: int
    created_at: datetime


@dataclass(frozen=True)
class Outcome:
    """One evaluation of a watch's rules on one dataset version: the cells that were evaluated.

    Cells absent from `cells` (no consent, over the limit, policy changed) lose their baseline.
    """

    watch_id: str
    dataset_id: str
    version: int
    rules: list[int]  # indexes of the watch's rules on this dataset
    cells: pa.Table  # CELLS


@dataclass(frozen=True)
class Alert:
    seq: int
    subject: str
    watch_id: str
    rule_index: int
    rule: dict[str, Any]
    triggered_at: datetime


def _watch(row: Sequence[Any]) -> Watch:
    return Watch(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], row[6])


class WatchStore:
    def __init__(self, state: StateStore) -> None:
        self._state = state
        state.ensure_schema(SCHEMA)

    def create(self, watch: Watch, subjects: Sequence[str], baselines: Sequence[Outcome]) -> None:
        """Store a watch with its baseline truths and progress: visible whole or not at all."""
        with self._state.transaction() as con:
            con.execute(f"INSERT INTO watches ({_WATCH.removeprefix('seq, ')}) "  # noqa: S608
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        [watch.id, watch.bank_id, watch.purpose, json.dumps(watch.rules),
                         watch.subject_count, watch.created_at])
            new_subjects = pa.table({"pos": pa.array(range(len(subjects)), pa.int32()),
                                     "subject": pa.array(subjects, pa.string())})
            with registered(con, "new_subjects", new_subjects):
                con.execute("INSERT INTO watch_subjects SELECT ?, pos, subject FROM new_subjects",
                            [watch.id])
            for outcome in baselines:
                _apply(con, outcome)

    def get(self, watch_id: str) -> Watch | None:
        rows = self._state.query(_ACTIVE + " AND id = ?", [watch_id])
        return _watch(rows[0]) if rows else None

    def page(self, bank_id: str, after: int, limit: int) -> list[Watch]:
        rows = self._state.query(_ACTIVE + " AND bank_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                                 [bank_id, after, limit])
        return [_watch(r) for r in rows]

    def subjects(self, watch_id: str) -> list[str]:
        rows = self._state.query(
            "SELECT list(subject ORDER BY pos) FROM watch_subjects WHERE watch_id = ?", [watch_id])
        return list(rows[0][0] or []) if rows else []

    def progress(self, watch_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """Per watch: {dataset id: the version last evaluated}."""
        rows = self._state.query(
            "SELECT watch_id, dataset_id, version FROM watch_progress "
            "WHERE watch_id IN (SELECT unnest(?::VARCHAR[]))", [list(watch_ids)])
        out: dict[str, dict[str, int]] = {}
        for watch_id, dataset_id, version in rows:
            out.setdefault(watch_id, {})[dataset_id] = version
        return out

    def delete(self, watch_id: str, bank_id: str, at: datetime) -> bool:
        """End the caller's watch (False if there is none): no more evaluation, its truths go.

        Call inside `state.transaction()`, with the audit record. The row stays, soft-deleted,
        so that the alerts it raised still name their rule.
        """
        found = self._state.query("UPDATE watches SET deleted_at = ? WHERE id = ? AND bank_id = ? "
                                  "AND deleted_at IS NULL RETURNING id", [at, watch_id, bank_id])
        if found:
            for table in ("watch_subjects", "watch_state", "watch_progress"):
                self._state.run(f"DELETE FROM {table} WHERE watch_id = ?", [watch_id])  # noqa: S608
        return bool(found)

    def behind(self) -> list[tuple[str, list[str]]]:
        """The work to do: per dataset, the live watches that have not seen its current version."""
        rows = self._state.query(
            "SELECT p.dataset_id, list(p.watch_id ORDER BY w.seq) FROM watch_progress p "
            "JOIN watches w ON w.id = p.watch_id JOIN datasets d ON d.id = p.dataset_id "
            "WHERE w.deleted_at IS NULL AND p.version < d.version "
            "GROUP BY p.dataset_id ORDER BY p.dataset_id")
        return [(r[0], list(r[1])) for r in rows]

    def turned_true(self, outcome: Outcome) -> list[tuple[str, int]]:
        """(subject, rule) cells true now that were false or unknown: a baseline does not count."""
        rows = self._state.query_joined(
            "cells", outcome.cells,
            "SELECT n.subject, n.rule FROM cells n JOIN watch_state s "
            "ON s.subject = n.subject AND s.rule = n.rule "
            "WHERE s.watch_id = ? AND n.truth AND NOT coalesce(s.truth, false) "
            "ORDER BY n.subject, n.rule", [outcome.watch_id])
        return [(r[0], r[1]) for r in rows]

    def commit(self, outcome: Outcome, bank_id: str, alerts: Sequence[tuple[str, int]],
               at: datetime) -> bool:
        """Store an evaluation and its alerts in one transaction; False if the watch has ended.

        Progress moves with the truths, so a crash before this point re-evaluates the version
        and one after it does not: each turn raises its alert once.
        """
        with self._state.transaction() as con:
            live = con.execute("SELECT 1 FROM watches WHERE id = ? AND deleted_at IS NULL",
                               [outcome.watch_id]).fetchall()
            if not live:
                return False
            _apply(con, outcome)
            if alerts:
                new_alerts = pa.table({
                    "subject": pa.array([a[0] for a in alerts], pa.string()),
                    "rule": pa.array([a[1] for a in alerts], pa.int32())})
                with registered(con, "new_alerts", new_alerts):
                    con.execute(
                        "INSERT INTO alerts (watch_id, bank_id, subject, rule, dataset_id, "
                        "version, triggered_at) SELECT ?, ?, subject, rule, ?, ?, ? "
                        "FROM new_alerts",
                        [outcome.watch_id, bank_id, outcome.dataset_id, outcome.version, at])
        return True

    def alerts(self, bank_id: str, after: int, limit: int) -> list[Alert]:
        """The bank's alerts in the order they were raised, after the cursor `after`."""
        rows = self._state.query(
            "SELECT a.seq, a.subject, a.watch_id, a.rule, a.triggered_at, w.rules "
            "FROM alerts a JOIN watches w ON w.id = a.watch_id "
            "WHERE a.bank_id = ? AND a.seq > ? ORDER BY a.seq LIMIT ?", [bank_id, after, limit])
        rules: dict[str, list[dict[str, Any]]] = {}
        out = []
        for seq, subject, watch_id, rule, at, written in rows:
            listed = rules.get(watch_id) or rules.setdefault(watch_id, json.loads(written))
            out.append(Alert(seq, subject, watch_id, rule, listed[rule], at))
        return out


def _apply(con: duckdb.DuckDBPyConnection, outcome: Outcome) -> None:
    """Replace the watch's truths for these rules with `cells`, and move its progress."""
    con.execute("DELETE FROM watch_state WHERE watch_id = ? AND list_contains(?::INTEGER[], rule)",
                [outcome.watch_id, outcome.rules])
    with registered(con, "cells", outcome.cells):
        con.execute("INSERT INTO watch_state SELECT ?, subject, rule, truth FROM cells",
                    [outcome.watch_id])
    con.execute("DELETE FROM watch_progress WHERE watch_id = ? AND dataset_id = ?",
                [outcome.watch_id, outcome.dataset_id])
    con.execute("INSERT INTO watch_progress VALUES (?, ?, ?)",
                [outcome.watch_id, outcome.dataset_id, outcome.version])
