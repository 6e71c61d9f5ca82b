"""Liveness of agreements and consents: the expiry, end and revocation instants are exact."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from policies.facts import Agreement
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
