"""Bench set-up shortcuts: consents inserted in bulk into a stopped room.

100,000 enterprises granting through the API would spend a bench on signing receipts; the rows
carry a placeholder receipt, which verification and scoring never read.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from saferoom.room import Room
from saferoom.settings import load_settings


def insert_consents(room_dir: Path, bank_id: str, purpose: str, datasets: list[str],
                    subjects: list[str]) -> None:
    """Live consents (30 days) from every one of `subjects`, for `bank_id` and `purpose`."""
    room = Room.open(load_settings({}, {"data_dir": room_dir}))
    now = datetime.now(UTC)
    try:
        room.state.run(
            "INSERT INTO consents (id, subject_uscc, grantee_bank_id, purpose, datasets, fields, "
            "expires_at, granted_at, revoked_at, notices_digest, receipt_payload, "
            "receipt_signature) SELECT 'con_bench_' || s, s, ?, ?, ?, NULL, ?, ?, NULL, 'bench', "
            "'bench', 'bench' FROM (SELECT unnest(?::VARCHAR[]) AS s)",
            [bank_id, purpose, datasets, now + timedelta(days=30), now - timedelta(minutes=1),
             subjects],
        )
    finally:
        room.close()
