"""Facts the service loads from storage for the decisions: the actor, agreements, consents, columns.

Frozen dataclasses, so a decision cannot change the facts it was given; all instants tz-aware.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

from policies.names import field_ref
from policies.roles import Role

ColumnType = Literal["string", "int", "float", "bool", "date"]
ColumnRole = Literal["key", "dimension", "measure", "flag", "attribute"]


def require_aware(name: str, instant: datetime) -> None:
    """Refuse naive datetimes: comparing one with an aware one would silently mean local time."""
    tz = instant.tzinfo
    # A fixed-offset zone (UTC is one) always has an offset: skips a call per instant, and a
    # 10,000-subject batch checks ~30,000 instants.
    if type(tz) is not timezone and (tz is None or instant.utcoffset() is None):
        raise ValueError(f"{name} must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Actor:
    """The authenticated caller; `uscc` is set for enterprises only."""

    id: str
    role: Role
    uscc: str | None = None


@dataclass(frozen=True, slots=True)
class ColumnFacts:
    """One column of a registered dataset, as declared at creation."""

    name: str
    type: ColumnType
    role: ColumnRole


@dataclass(frozen=True, slots=True)
class Agreement:
    """A data-sharing agreement: this bank may use these datasets for these purposes until then."""

    id: str
    bank_id: str
    datasets: frozenset[str]
    purposes: frozenset[str]
    valid_until: datetime
    ended_at: datetime | None = None

    def __post_init__(self) -> None:
        require_aware("valid_until", self.valid_until)
        if self.ended_at is not None:
            require_aware("ended_at", self.ended_at)

    def is_live(self, now: datetime) -> bool:
        """Live strictly before `valid_until`, and only if not ended at or before `now`."""
        if self.ended_at is not None and self.ended_at <= now:
            return False
        return now < self.valid_until

    def names(self, bank_id: str, dataset: str) -> bool:
        """True if this agreement is with `bank_id` and names `dataset`, whatever the purpose."""
        return self.bank_id == bank_id and dataset in self.datasets


@dataclass(frozen=True, slots=True)
class Consent:
    """An enterprise's authorization for one bank, one purpose, some datasets and fields.

    `fields` holds qualified `dataset.field` references; None means every field of `datasets`.
    """

    id: str
    subject_uscc: str
    grantee_bank_id: str
    purpose: str
    datasets: frozenset[str]
    fields: frozenset[str] | None
    expires_at: datetime
    granted_at: datetime
    revoked_at: datetime | None = None
    notices_digest: str = ""

    def __post_init__(self) -> None:
        require_aware("expires_at", self.expires_at)
        require_aware("granted_at", self.granted_at)
        if self.revoked_at is not None:
            require_aware("revoked_at", self.revoked_at)

    def is_live(self, now: datetime) -> bool:
        """Live from `granted_at` to strictly before `expires_at`, unless revoked at or before now.

        A request that started before the grant cannot borrow it, and revocation binds every
        request that starts at or after the revocation instant.
        """
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.granted_at <= now < self.expires_at

    def serves(self, bank_id: str, subject_uscc: str, purpose: str, now: datetime) -> bool:
        """True if live now and given by this subject to this bank for exactly this purpose."""
        return (
            self.grantee_bank_id == bank_id
            and self.subject_uscc == subject_uscc
            and self.purpose == purpose
            and self.is_live(now)
        )

    def covers(self, dataset: str, fields: Iterable[str] = ()) -> bool:
        """True if the scope includes `dataset` and every one of its `fields` (bare names)."""
        if dataset not in self.datasets:
            return False
        if self.fields is None:
            return True
        return all(field_ref(dataset, field) in self.fields for field in fields)
