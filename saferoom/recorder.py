"""One audited call: who is asking for which operation, and the event that records its outcome.

Handlers record before they return; the error handlers record every denial the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any, Literal, NamedTuple

from audit.events import AuditEvent, EventDraft, SubjectBatch
from audit.log import AuditLog
from saferoom.auth import Principal

# One encoder for every digest: json.dumps with options builds a new one per call, a tenth of
# a 10,000-subject batch's audit time.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                              default=str)


def _canonical_encoder() -> Callable[[Any], str]:
    """`_CANONICAL.encode` without building its C encoder on every call, as `encode` does
    (~40% of encoding a score). Releases are trees, so the cycle check is left out."""
    if c_make_encoder is None:  # an interpreter without the C accelerator
        return _CANONICAL.encode
    encoder = c_make_encoder(None, str, encode_basestring, None, ":", ",", True, False, True)
    return lambda released: "".join(encoder(released, 0))


_ENCODE = _canonical_encoder()


def digest(released: Any, key: bytes | None = None) -> str:
    """SHA-256 of the canonical JSON of what leaves the room; keyed (HMAC) with the room's key.

    Keyed because a small release (one yes/no answer about one firm) could otherwise be
    recovered from its digest by anyone reading the log, by hashing both candidates.
    """
    body = _ENCODE(released).encode()
    if key is None:
        return hashlib.sha256(body).hexdigest()
    return hmac.digest(key, body, "sha256").hex()


def _digester(key: bytes | None) -> Callable[[Any], str]:
    """`digest` with the key fixed, for the releases of one batch, in one thread.

    The HMAC key schedule is done once and copied per release (hmac.digest redoes it every
    call).
    """
    encode = _ENCODE
    if key is None:
        return lambda released: hashlib.sha256(encode(released).encode()).hexdigest()
    keyed = hmac.new(key, digestmod=hashlib.sha256)

    def sign(released: Any) -> str:
        mac = keyed.copy()
        mac.update(encode(released).encode())
        return mac.hexdigest()

    return sign


@dataclass
class Call:
    log: AuditLog
    operation: str
    principal: Principal | None = None
    digest_key: bytes | None = None
    recorded: int = 0  # events this call has written

    def record(
        self,
        *,
        resource: str | None = None,
        subjects: Iterable[str] = (),
        purpose: str | None = None,
        decision: Literal["allow", "deny"] = "allow",
        reason: str | None = None,
        epsilon: float | None = None,
        released: Any = None,
    ) -> AuditEvent:
        """Append the event durably; raises (and so nothing is released) if the log fails."""
        draft = _drafter(self)(
            resource=resource,
            subjects=tuple(subjects),
            purpose=purpose,
            decision=decision,
            reason=reason,
            epsilon=epsilon,
            digest=digest(released, self.digest_key) if released is not None else None,
        )
        (event,) = self.log.append([draft])
        self.recorded += 1
        return event


def _drafter(call: Call) -> partial[EventDraft]:
    """EventDraft with the caller and operation filled in: made once, then once per event."""
    p = call.principal
    return partial(EventDraft, actor=p.id if p else None, role=p.role if p else None,
                   action=call.operation)


class SubjectRelease(NamedTuple):
    """What one subject's part of a batch released, for its own audit event (a tuple: a batch
    makes 10,000 of them, and a frozen dataclass costs ~1 µs each to build)."""

    subject: str
    decision: Literal["allow", "deny"]
    reason: str | None
    released: Any


def record_per_subject(
    call: Call, releases: Iterable[SubjectRelease], *, resource: str, purpose: str
) -> range:
    """One event per subject, so each enterprise finds its own; one durable append for all;
    returns their seqs.

    As a SubjectBatch: the caller, operation, resource and purpose are checked once for the
    batch rather than in a draft per subject (a 10,000-subject request writes 10,000 events).
    """
    p = call.principal
    sign = _digester(call.digest_key)
    batch = SubjectBatch(
        actor=p.id if p else None, role=p.role if p else None, action=call.operation,
        resource=resource, purpose=purpose,
        rows=[(r.subject, r.decision, r.reason, sign(r.released)) for r in releases],
    )
    seqs = call.log.append_per_subject(batch)
    call.recorded += len(seqs)
    return seqs
