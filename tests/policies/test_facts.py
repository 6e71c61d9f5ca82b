"""Liveness of agreements and consents: the expiry, end and revocation instants are exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest

from policies.facts import Agreement, require_aware
from tests.policies.worlds import MICRO, NOW, agreement, consent


def test_agreement_is_live_until_the_instant_it_expires():
    live = agreement(valid_until=NOW)
    assert live.is_live(NOW - MICRO)
    assert not live.is_live(NOW)
    assert not live.is_live(NOW + MICRO)


def test_an_ended_agreement_is_dead_from_the_end_instant():
    ended = agreement(ended_at=NOW)
    assert ended.is_live(NOW - MICRO)
    assert not ended.is_live(NOW)


def test_consent_is_live_until_the_instant_it_expires():
    given = consent(expires_at=NOW)
    assert given.is_live(NOW - MICRO)
    assert not given.is_live(NOW)


def test_revocation_binds_from_its_instant():
    revoked = consent(revoked_at=NOW)
    assert revoked.is_live(NOW - MICRO)
    assert not revoked.is_live(NOW)
    assert not revoked.is_live(NOW + timedelta(days=1))


def test_a_consent_is_not_live_before_it_was_granted():
    given = consent(granted_at=NOW)
    assert not given.is_live(NOW - MICRO)
    assert given.is_live(NOW)


def test_covers_fields_by_qualified_reference():
    scoped = consent(datasets=("tax", "court"), fields=frozenset({"tax.annual_tax"}))
    assert scoped.covers("tax", ["annual_tax"])
    assert not scoped.covers("tax", ["tax_arrears"])
    assert not scoped.covers("court", ["annual_tax"])
    assert not scoped.covers("social")
    assert consent(fields=None).covers("tax", ["anything"])


def test_naive_instants_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        Agreement("a", "b", frozenset(), frozenset(), datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        consent(expires_at=datetime(2026, 1, 1))


class _NoOffset(tzinfo):
    def utcoffset(self, dt: datetime | None) -> None:
        return None

    def dst(self, dt: datetime | None) -> None:
        return None

    def tzname(self, dt: datetime | None) -> None:
        return None


def test_aware_means_an_offset_whatever_the_zone_type():
    for zone in (UTC, timezone(timedelta(hours=8)), ZoneInfo("Asia/Shanghai")):
        require_aware("t", datetime(2026, 1, 1, tzinfo=zone))
    for naive in (datetime(2026, 1, 1), datetime(2026, 1, 1, tzinfo=_NoOffset())):
        with pytest.raises(ValueError, match="timezone-aware"):
            require_aware("t", naive)
