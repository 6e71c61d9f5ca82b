"""Enterprise consent: the grant request, whether it may be granted, and the receipt payload.

The service signs `receipt_payload` with the room's key; anyone can verify it offline.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from policies.decisions import Decision
from policies.documents import DatasetPolicy, unique_items
from policies.facts import ColumnFacts, Consent, require_aware
from policies.names import DatasetName, Purpose, field_ref, is_name, split_field_ref

RECEIPT_TYPE = "saferoom.consent.v1"

# Shown when a dataset's policy carries no notice of its own: the plan requires the subject be
# told the risks before any business-secret detail reaches a bank.
DEFAULT_CONSENT_NOTICE = (
    "授权后，被授权银行可在数据安全屋内就您授权的数据项进行核验或评分，用于所述用途，"
    "直至授权到期或您撤销授权。银行不会看到原始数据，但核验结果可能间接反映数据内容。"
    " / Once granted, the named bank may verify or score the data you authorize, inside the "
    "safe room, for the stated purpose, until the consent expires or you revoke it. The bank "
    "never sees the raw data, but the answers it receives can reveal something about it."
)

_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T")


def _iso_instant(value: object) -> object:
    # Lax pydantic would read 1700000000 as a Unix time; a consent expiry must be written out.
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATETIME.match(value)):
        return value
    raise ValueError("must be an ISO 8601 date-time with a UTC offset")


# An instant written out in RFC 3339 with its offset; a naive time or a bare number is refused.
Instant = Annotated[AwareDatetime, BeforeValidator(_iso_instant)]


class ConsentRequest(BaseModel):
    """`POST /v1/consents`: an enterprise authorizes one bank, for one purpose, until `expires_at`.

    `fields` are `dataset.field` references; a bare field name is accepted when one dataset is
    named. Left out, the consent covers every field of `datasets`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    grantee: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=128)]
    purpose: Purpose
    datasets: Annotated[list[DatasetName], Field(min_length=1, max_length=64)]
    fields: Annotated[list[Annotated[str, StringConstraints(strict=True, max_length=129)]],
                      Field(min_length=1, max_length=1024)] | None = None
    expires_at: Instant
    acknowledge_risks: Annotated[bool, Field(strict=True)]

    _unique_datasets = field_validator("datasets")(unique_items)

    @field_validator("acknowledge_risks")
    @classmethod
    def _risks_acknowledged(cls, acknowledged: bool) -> bool:
        if not acknowledged:
            raise ValueError("the risk notice must be acknowledged (true) before consenting")
        return acknowledged

    @model_validator(mode="after")
    def _fields_within_datasets(self) -> ConsentRequest:
        scope = self.scope_fields()
        if scope is None:
            return self
        for dataset in self.datasets:
            if not any(ref.startswith(f"{dataset}.") for ref in scope):
                raise ValueError(f"fields name no field of dataset {dataset}")
        return self

    def scope_fields(self) -> frozenset[str] | None:
        """The fields as qualified `dataset.field` references, or None for every field.

        Raises ValueError for a reference that is malformed, ambiguous or outside `datasets`.
        """
        if self.fields is None:
            return None
        refs: set[str] = set()
        for entry in self.fields:
            parts = split_field_ref(entry)
            if parts is None and is_name(entry) and len(self.datasets) == 1:
                parts = (self.datasets[0], entry)
            if parts is None:
                # Never echo the entry: error messages carry no submitted values.
                raise ValueError("each field must be written as dataset.field")
            if parts[0] not in self.datasets:
                raise ValueError("a field names a dataset the consent does not list")
            refs.add(field_ref(*parts))
        return frozenset(refs)

    def to_consent(
        self, *, consent_id: str, subject_uscc: str, granted_at: datetime, notices_digest: str,
    ) -> Consent:
        """The stored fact for a granted request."""
        return Consent(
            id=consent_id,
            subject_uscc=subject_uscc,
            grantee_bank_id=self.grantee,
            purpose=self.purpose,
            datasets=frozenset(self.datasets),
            fields=self.scope_fields(),
            expires_at=self.expires_at,
            granted_at=granted_at,
            notices_digest=notices_digest,
        )


def decide_consent_grant(
    request: ConsentRequest,
    policies: Mapping[str, DatasetPolicy | None],
    now: datetime,
    *,
    columns: Mapping[str, Mapping[str, ColumnFacts]],
) -> Decision:
    """May this consent be granted? Registered datasets, a consentable purpose, real fields,
    and an expiry in the future but no later than the strictest dataset's `max_consent_days`.

    `policies` holds every registered dataset named (None: no policy yet); `columns` their schemas.
    """
    require_aware("now", now)
    max_days: list[int] = []
    for name in sorted(request.datasets):
        if name not in policies:
            return Decision.deny("query_not_allowed", f"dataset {name} is not registered")
        policy = policies[name]
        # Aggregates never use consent; a consent only a DP query could "use" would mislead.
        if policy is None or request.purpose not in policy.consent_purposes():
            return Decision.deny("purpose_not_allowed", f"the policy of dataset {name} allows no "
                                 f"verification or scoring for purpose {request.purpose}")
        max_days.append(policy.max_consent_days)
    for ref in sorted(request.scope_fields() or ()):
        dataset, field = ref.split(".", 1)
        column = columns.get(dataset, {}).get(field)
        if column is None or column.role == "key":
            return Decision.deny("column_not_allowed", f"{ref} is not a field of dataset {dataset}")
    if request.expires_at <= now:
        return Decision.deny("query_not_allowed", "expires_at must be in the future")
    # The strictest dataset bounds the whole consent; `datasets` is non-empty by validation.
    limit = min(max_days)
    if request.expires_at > now + timedelta(days=limit):
        return Decision.deny("query_not_allowed",
                             f"a consent for these datasets may last at most {limit} days")
    return Decision.allow()


def consent_notices(
    datasets: Iterable[str], policies: Mapping[str, DatasetPolicy | None],
) -> dict[str, str]:
    """The risk notice shown for each dataset: its policy's, else the default. Store it as shown."""
    notices: dict[str, str] = {}
    for name in sorted(datasets):
        policy = policies.get(name)
        notice = None if policy is None else policy.consent_notice
        notices[name] = DEFAULT_CONSENT_NOTICE if notice is None else notice
    return notices


def canonical_json(value: object) -> bytes:
    """Sorted keys, no spaces, UTF-8: equal values give equal bytes, so signatures are stable."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def notices_digest(notices: Mapping[str, str]) -> str:
    """`sha256:<hex>` of the notices shown, binding the receipt to the exact text acknowledged."""
    return "sha256:" + hashlib.sha256(canonical_json(dict(notices))).hexdigest()


def _instant(value: datetime) -> str:
    # One spelling per instant: UTC, microseconds, "Z".
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def receipt_payload(consent: Consent) -> bytes:
    """The canonical bytes of the consent's scope that the room signs for the enterprise."""
    return canonical_json({
        "type": RECEIPT_TYPE,
        "id": consent.id,
        "subject": consent.subject_uscc,
        "grantee": consent.grantee_bank_id,
        "purpose": consent.purpose,
        "datasets": sorted(consent.datasets),
        "fields": None if consent.fields is None else sorted(consent.fields),
        "granted_at": _instant(consent.granted_at),
        "expires_at": _instant(consent.expires_at),
        "notices_digest": consent.notices_digest,
    })
