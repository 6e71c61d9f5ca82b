"""Enterprise consent: read the risk notices, grant (with a signed receipt), list, revoke.

A bank lists the consents granted to it: who, purpose, scope, expiry and status, nothing else.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from policies.consent import (
    ConsentRequest,
    consent_notices,
    decide_consent_grant,
    notices_digest,
    receipt_payload,
)
from policies.documents import DatasetPolicy
from policies.facts import ColumnFacts, Consent
from policies.holdings import may_see_dataset
from policies.names import DatasetName
from saferoom.api.deps import RoomDep, operation
from saferoom.api.support import Cursor, Limit, instant, paged, refuse
from saferoom.consent_store import StoredConsent
from saferoom.dataset_policy import column_facts, policy_of
from saferoom.errors import InvalidFields, NotFound
from saferoom.recorder import Call
from saferoom.room import Room
from saferoom.state import utcnow

router = APIRouter()


def consent_status(c: Consent, now: datetime) -> str:
    if c.revoked_at is not None and c.revoked_at <= now:
        return "revoked"
    return "active" if c.is_live(now) else "expired"


def _scope(c: Consent, now: datetime) -> dict[str, Any]:
    return {"id": c.id, "purpose": c.purpose, "datasets": sorted(c.datasets),
            "fields": None if c.fields is None else sorted(c.fields),
            "expires_at": instant(c.expires_at), "status": consent_status(c, now)}


def bank_view(stored: StoredConsent, now: datetime) -> dict[str, Any]:
    """What the grantee bank may know of a consent."""
    return {**_scope(stored.consent, now), "subject": stored.consent.subject_uscc}


def enterprise_view(stored: StoredConsent, now: datetime) -> dict[str, Any]:
    """What the granting enterprise sees: the whole grant and its receipt."""
    c = stored.consent
    return {**_scope(c, now), "grantee": c.grantee_bank_id, "granted_at": instant(c.granted_at),
            "revoked_at": instant(c.revoked_at), "notices_digest": c.notices_digest,
            "receipt": {"payload": stored.receipt_payload, "signature": stored.receipt_signature}}


def _grant_facts(
    room: Room, datasets: list[str], grantee: str,
) -> tuple[dict[str, DatasetPolicy | None], dict[str, dict[str, ColumnFacts]]]:
    """Policies and columns of the named datasets a consent to `grantee` could concern.

    A bank's private dataset counts only for that bank: for any other it is as if unregistered.
    """
    policies: dict[str, DatasetPolicy | None] = {}
    columns: dict[str, dict[str, ColumnFacts]] = {}
    for name in datasets:
        d = room.state.dataset_by_name(name)
        # Resolved as the grantee bank would see it.
        if d is not None and may_see_dataset("bank", grantee, d.owner_id, d.owner_role):
            policies[name] = policy_of(d)
            columns[name] = column_facts(d)
    return policies, columns


def grant_consent(
    room: Room, call: Call, request: ConsentRequest,
) -> tuple[StoredConsent, Mapping[str, str]]:
    """Decide, sign, store and record a grant by the calling enterprise, atomically."""
    p = call.principal
    assert p is not None
    assert p.uscc is not None
    if not room.state.principal_exists(request.grantee, "bank"):
        raise InvalidFields.at(["body", "grantee"], "no bank has this id")
    now = utcnow()
    policies, columns = _grant_facts(room, list(request.datasets), request.grantee)
    decision = decide_consent_grant(request, policies, now, columns=columns)
    if not decision.allowed:
        refuse(call, decision, subjects=[p.uscc], purpose=request.purpose)
    notices = consent_notices(request.datasets, policies)
    consent = request.to_consent(consent_id="con_" + secrets.token_hex(8), subject_uscc=p.uscc,
                                 granted_at=now, notices_digest=notices_digest(notices))
    payload = receipt_payload(consent)
    stored = StoredConsent(0, consent, payload.decode(), room.signer.sign(payload).hex())
    with room.state.transaction():
        room.consents.add(consent, notices, stored.receipt_payload, stored.receipt_signature)
        # The released digest covers the receipt, which carries the notices' digest.
        call.record(resource=consent.id, subjects=[p.uscc], purpose=consent.purpose,
                    released=enterprise_view(stored, now))
    return stored, notices


def revoke_consent(room: Room, call: Call, consent_id: str) -> dict[str, Any]:
    """Revoke the calling enterprise's consent now, recorded in the same transaction."""
    p = call.principal
    assert p is not None
    assert p.uscc is not None
    with room.state.transaction():
        revoked = room.consents.revoke(consent_id, p.uscc, utcnow())
        if revoked is None:
            raise NotFound("no such consent")
        body = {"id": revoked.id, "status": "revoked", "revoked_at": instant(revoked.revoked_at)}
        call.record(resource=revoked.id, subjects=[p.uscc], purpose=revoked.purpose,
                    released=body)
    return body


def consent_page(room: Room, call: Call, after: int = 0, limit: int = 100) -> dict[str, Any]:
    """One page of the caller's consents (granted by it, or to it for a bank), recorded."""
    p = call.principal
    assert p is not None
    now = utcnow()
    fetched = (room.consents.page(grantee=p.id, after=after, limit=limit + 1) if p.role == "bank"
               else room.consents.page(subject=p.uscc, after=after, limit=limit + 1))
    found, next_cursor = paged(fetched, limit, lambda s: s.seq)
    view = bank_view if p.role == "bank" else enterprise_view
    body = {"consents": [view(s, now) for s in found], "next_cursor": next_cursor}
    call.record(resource="consents", subjects=sorted({s.consent.subject_uscc for s in found}),
                released=body)
    return body


@router.get("/v1/consents/notices")
def get_notices(
    call: Annotated[Call, operation("consent.notices")],
    room: RoomDep,
    datasets: Annotated[list[DatasetName], Query(min_length=1, max_length=64)],
    grantee: Annotated[str, Query(min_length=1, max_length=128)],
) -> dict[str, Any]:
    """The risk notices a grant of these datasets to `grantee` would show, and their digest."""
    assert call.principal is not None
    assert call.principal.uscc is not None
    policies, _ = _grant_facts(room, datasets, grantee)
    notices = consent_notices(datasets, policies)
    body = {"notices": notices, "notices_digest": notices_digest(notices)}
    call.record(resource="consents/notices", subjects=[call.principal.uscc], released=body)
    return body


@router.post("/v1/consents", status_code=201)
def post_consent(
    body: ConsentRequest,
    call: Annotated[Call, operation("consent.grant")],
    room: RoomDep,
) -> dict[str, Any]:
    """Grant -> 201 with the receipt: `payload` (canonical JSON) signed (`signature`, hex Ed25519)
    by the room key of `GET /v1/keys`; `notices` are the texts acknowledged.

    422 without `acknowledge_risks: true`; 403 `purpose_not_allowed` when a dataset's policy
    allows no consented use for the purpose, `query_not_allowed` for an expiry past the policy's
    `max_consent_days`, `column_not_allowed` for an unknown field.
    """
    stored, notices = grant_consent(room, call, body)
    return {**enterprise_view(stored, stored.consent.granted_at), "notices": notices}


@router.get("/v1/consents")
def list_consents(
    call: Annotated[Call, operation("consent.list")],
    room: RoomDep,
    limit: Limit = 100,
    cursor: Cursor = 0,
) -> dict[str, Any]:
    """An enterprise's own consents, or (for a bank) those granted to it, in grant order."""
    return consent_page(room, call, cursor, limit)


@router.delete("/v1/consents/{consent_id}")
def delete_consent(
    consent_id: str,
    call: Annotated[Call, operation("consent.revoke")],
    room: RoomDep,
) -> dict[str, Any]:
    """Revoke -> 200 `{"status": "revoked"}`; binds every request that starts from now on.

    Only the granting enterprise: anyone else's id is a 404, as for an unknown one.
    """
    return revoke_consent(room, call, consent_id)
