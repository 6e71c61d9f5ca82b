"""Small pieces the governance routes share: paging, instants and audited refusals.

Their changes run in `room.state.transaction()` around `call.record(...)`: unrecorded, undone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, NoReturn, TypeVar

from fastapi import Query

from policies.decisions import Decision
from policies.errors import PolicyDenied
from saferoom.recorder import Call

T = TypeVar("T")
MAX_PAGE = 1000
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="items per page")]
Cursor = Annotated[int, Query(ge=0, description="`next_cursor` of the previous page")]


def instant(moment: datetime | None) -> str | None:
    """RFC 3339 in UTC with microseconds, the audit log's spelling."""
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def paged(
    items: Sequence[T], limit: int, seq: Callable[[T], int],
) -> tuple[Sequence[T], int | None]:
    """Split a fetch of `limit + 1` items into the page and the cursor of the next one."""
    page = items[:limit]
    return page, (seq(page[-1]) if len(items) > limit else None)


def refuse(call: Call, decision: Decision, *, subjects: Iterable[str] = (),
           purpose: str | None = None, resource: str | None = None) -> NoReturn:
    """Record a policy denial naming its subjects (so they see it), then raise it as a 403."""
    assert decision.code is not None
    call.record(resource=resource, subjects=subjects, purpose=purpose, decision="deny",
                reason=decision.code)
    raise PolicyDenied(decision.code, decision.reason)

