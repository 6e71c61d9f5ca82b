"""Post-loan monitoring (贷后监测): a bank watches borrowers and hears when a rule turns true.

Rules are verification checks (same policy, consent, extraction limit); a single worker thread
evaluates them after each committed dataset version, off the upload's path.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from policies.decisions import Decision
from policies.errors import PolicyDenied
from policies.names import Purpose
from saferoom.api.support import instant, paged
from saferoom.auth import Principal
from saferoom.errors import NotFound
from saferoom.query.duckdb_engine import DuckDBEngine
from saferoom.query.exact import SourceVersion
from saferoom.recorder import Call, SubjectRelease, record_per_subject
from saferoom.room import Room
from saferoom.state import DatasetRecord, utcnow
from saferoom.subject_rights import principal_names
from saferoom.verification import CheckRequest, VerificationService, check_subjects
from saferoom.watch_store import CELLS, Outcome, Watch, WatchStore

MAX_SUBJECTS = 100_000
MAX_RULES = 10
# Subjects per ledger transaction, so the state lock is never held for a whole 100,000.
CHUNK = 10_000
RETRY_SECONDS = 5.0
log = logging.getLogger(__name__)


class WatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: Purpose
    subjects: list[StrictStr] = Field(min_length=1, max_length=MAX_SUBJECTS)
    rules: list[CheckRequest] = Field(min_length=1, max_length=MAX_RULES)


class WatchService:
    """Create, list and end watches; evaluate them (baseline at creation, then per version)."""

    def __init__(self, room: Room, verifications: VerificationService,
                 engine: DuckDBEngine) -> None:
        self._room = room
        self._verify = verifications
        self._engine = engine
        self.store = WatchStore(room.state)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None

    # -- the worker ---------------------------------------------------------------------------
    def start(self) -> None:
        """Evaluate after every commit, and once now: versions committed while down count."""
        self._unsubscribe = self._room.datasets.on_commit(lambda _id, _version: self._wake.set())
        self._thread = threading.Thread(target=self._run, name="watch-worker", daemon=True)
        self._thread.start()
        self._wake.set()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop after the watch in hand; what is left is picked up from the DB at next start."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the watch worker did not stop within %.0fs", timeout)

    def _run(self) -> None:
        retry: float | None = None
        while True:
            self._wake.wait(retry)
            if self._stop.is_set():
                return
            self._wake.clear()  # before the pass: a commit during it wakes another
            try:
                _, failed = self.run_pending()
            except Exception as exc:  # the type only: messages from the engine can quote data
                log.error("watch evaluation failed with %s", type(exc).__name__)
                failed = 1
            retry = RETRY_SECONDS if failed else None

    def run_pending(self) -> tuple[int, int]:
        """Evaluate every live watch behind its dataset's current version.

        A watch whose evaluation fails stays behind, to be retried; the others go on.
        -> (alerts raised, watches that failed)
        """
        alerts = failed = 0
        for dataset_id, watch_ids in self.store.behind():
            record = self._room.state.dataset(dataset_id)
            if self._stop.is_set():
                break
            if record is None:
                continue
            started = time.perf_counter()
            subjects = raised = 0
            for watch_id in watch_ids:
                if self._stop.is_set():
                    break
                watch = self.store.get(watch_id)
                if watch is None:
                    continue
                try:
                    raised += self._evaluate_version(watch, record)
                except Exception as exc:  # the type only, as above
                    log.error("watch %s on dataset=%s failed with %s; will retry", watch_id,
                              dataset_id, type(exc).__name__)
                    failed += 1
                subjects += watch.subject_count
            log.info("watch evaluation dataset=%s v%d: %d watches, %d subjects, %d alerts, "
                     "%d failed, %.2fs", dataset_id, record.version, len(watch_ids), subjects,
                     raised, failed, time.perf_counter() - started)
            alerts += raised
        return alerts, failed

    def _evaluate_version(self, watch: Watch, record: DatasetRecord) -> int:
        """Evaluate, audit the alerts, then store truths and alerts together. -> alerts."""
        started = time.perf_counter()
        bank = self._bank(watch.bank_id)
        outcome, _ = self._evaluate(watch, self.store.subjects(watch.id), bank, record, utcnow())
        turned = self.store.turned_true(outcome)
        at = utcnow()
        if turned:
            # Durable before the alerts can be read; a crash before the commit below re-raises
            # them once (the version is evaluated again), so an event may repeat, never be lost.
            by_subject: dict[str, list[int]] = {}
            for subject, rule in turned:
                by_subject.setdefault(subject, []).append(rule)
            record_per_subject(self._room.call("watch.alert", bank), [
                SubjectRelease(s, "allow", None, {"watch_id": watch.id, "uscc": s, "rules": rules,
                                                  "triggered_at": instant(at)})
                for s, rules in by_subject.items()], resource=watch.id, purpose=watch.purpose)
        stored = self.store.commit(outcome, watch.bank_id, turned, at)
        log.debug("watch %s on dataset=%s v%d: %d subjects, %d cells evaluated, %d alerts, %.2fs",
                  watch.id, record.id, outcome.version, watch.subject_count,
                  outcome.cells.num_rows, len(turned) if stored else 0,
                  time.perf_counter() - started)
        return len(turned) if stored else 0

    def _bank(self, bank_id: str) -> Principal:
        name, _ = principal_names(self._room, [bank_id]).get(bank_id, ("", "bank"))
        return Principal(bank_id, "bank", name)

    # -- evaluation ---------------------------------------------------------------------------
    def _evaluate(self, watch: Watch, subjects: Sequence[str], bank: Principal,
                  record: DatasetRecord, now: datetime) -> tuple[Outcome, list[list[Decision]]]:
        """The watch's rules on `record`'s dataset, for the subjects the policy allows now.

        Decided as verification decides (request gate, consent, extraction limit, recorded in
        the same ledger), answered by one set-based query. -> (outcome, per-subject decisions).
        """
        indexes = [i for i, r in enumerate(watch.rules) if r["dataset"] == record.name]
        requested = [CheckRequest.model_validate(watch.rules[i]) for i in indexes]
        empty = Outcome(watch.id, record.id, record.version, indexes, CELLS.empty_table())
        try:
            cleared = self._verify.clear(bank, watch.purpose, requested, now)
        except PolicyDenied as exc:  # e.g. the agreement ended: nothing is evaluated
            row = [Decision.deny(exc.code, exc.reason)] * len(indexes)
            return empty, [row] * len(subjects)
        decisions: list[list[Decision]] = []
        for start in range(0, len(subjects), CHUNK):
            decisions += self._verify.decide(watch.bank_id, watch.purpose,
                                             subjects[start:start + CHUNK], cleared, now)
        chosen = [k for k, row in enumerate(decisions) if any(d.allowed for d in row)]
        if not chosen:
            return empty, decisions
        first = cleared.checks[0]
        # The version the engine holds now, at least `record.version`: if a newer one lands
        # between this and the query, progress under-reports and the next pass repeats it.
        version = self._engine.prepared(SourceVersion(record.id, record.name, record.version),
                                        first.schema).version
        answers = self._verify.answer(cleared.checks, [subjects[k] for k in chosen])
        cells: dict[str, list[Any]] = {"subject": [], "rule": [], "truth": []}
        for j, index in enumerate(indexes):
            _, answer = answers[j]
            for pos, k in enumerate(chosen):
                if decisions[k][j].allowed:
                    cells["subject"].append(subjects[k])
                    cells["rule"].append(index)
                    cells["truth"].append(answer[pos])
        return (Outcome(watch.id, record.id, version, indexes,
                        pa.table(cells, schema=CELLS)), decisions)

    # -- the HTTP operations ------------------------------------------------------------------
    def create(self, principal: Principal, request: WatchRequest, call: Call) -> dict[str, Any]:
        """Validate, gate, set the baseline silently, audit per subject, store; -> the view.

        A rule the policy refuses whatever the subject (a field outside `verify`, an operator)
        refuses the whole watch with its 403 code. Subjects without a live consent are kept:
        they are evaluated from the first version after they consent.
        """
        now = utcnow()
        check_subjects(request.subjects)
        cleared = self._verify.clear(principal, request.purpose, request.rules, now, "rules")
        for decision in cleared.fixed:
            if decision is not None:
                decision.raise_if_denied()
        watch = Watch(0, "wat_" + secrets.token_hex(8), principal.id, request.purpose,
                      [r.model_dump() for r in request.rules], len(request.subjects), now)
        baselines: list[Outcome] = []
        codes: list[list[str | None]] = [[None] * len(request.rules) for _ in request.subjects]
        for record in {c.record.name: c.record for c in cleared.checks}.values():
            outcome, decisions = self._evaluate(watch, request.subjects, principal, record, now)
            baselines.append(outcome)
            for row, decided in zip(codes, decisions, strict=True):
                for index, d in zip(outcome.rules, decided, strict=True):
                    row[index] = d.code
        releases = []
        for subject, row in zip(request.subjects, codes, strict=True):
            denied = sorted({c for c in row if c is not None})
            watched = any(c is None for c in row)
            releases.append(SubjectRelease(subject, "allow" if watched else "deny",
                                           ",".join(denied) or None,
                                           {"watch_id": watch.id, "uscc": subject, "rules": row}))
        # Audited before stored: should storing fail, the log over-reports a watch, never hides one.
        record_per_subject(call, releases, resource=watch.id, purpose=watch.purpose)
        self.store.create(watch, request.subjects, baselines)
        self._wake.set()  # a version committed while the baseline was taken is not skipped
        refused: dict[str, int] = {}
        for row in codes:
            for code in row:
                if code is not None:
                    refused[code] = refused.get(code, 0) + 1
        view = self._view(watch, {o.dataset_id: o.version for o in baselines})
        view["baseline"] = {"evaluated": sum(o.cells.num_rows for o in baselines),
                            "not_evaluated": refused}
        return view

    def page(self, principal: Principal, after: int, limit: int, call: Call) -> dict[str, Any]:
        """The caller's live watches, with the dataset versions each has evaluated."""
        found, next_cursor = paged(self.store.page(principal.id, after, limit + 1), limit,
                                   lambda w: w.seq)
        progress = self.store.progress([w.id for w in found])
        body = {"watches": [self._view(w, progress.get(w.id, {})) for w in found],
                "next_cursor": next_cursor}
        call.record(resource="watches", released=body)
        return body

    def delete(self, principal: Principal, watch_id: str, call: Call) -> dict[str, Any]:
        """End one of the caller's watches, recorded in the same transaction; else 404."""
        body = {"id": watch_id, "status": "deleted"}
        with self._room.state.transaction():
            if not self.store.delete(watch_id, principal.id, utcnow()):
                raise NotFound("no such watch")
            call.record(resource=watch_id, released=body)
        return body

    def alerts(self, principal: Principal, after: int, limit: int, call: Call) -> dict[str, Any]:
        """The caller's alerts: which firm, which rule (as written), when; never a data value.

        Reading them is a release about those firms too, recorded before the page leaves.
        """
        found, next_cursor = paged(self.store.alerts(principal.id, after, limit + 1), limit,
                                   lambda a: a.seq)
        body = {"alerts": [{"uscc": a.subject, "watch_id": a.watch_id, "rule": a.rule,
                            "rule_index": a.rule_index, "triggered_at": instant(a.triggered_at)}
                           for a in found],
                "next_cursor": next_cursor}
        call.record(resource="alerts", subjects=sorted({a.subject for a in found}),
                    released=body)
        return body

    def _view(self, watch: Watch, progress: dict[str, int]) -> dict[str, Any]:
        names = {d.id: d.name for d in self._room.state.datasets()}
        return {"id": watch.id, "purpose": watch.purpose, "rules": watch.rules,
                "subject_count": watch.subject_count, "created_at": instant(watch.created_at),
                "evaluated": {names.get(d, d): v for d, v in sorted(progress.items())}}

