"""Who sees which dataset schemas, who changes a dataset, and which records take objections."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from policies.holdings import decide_dataset_change, decide_objection_target, may_see_dataset
from policies.roles import ROLES

ids = st.sampled_from(["p_1", "p_2", "p_3"])
roles = st.sampled_from(ROLES)
owner_roles = st.sampled_from(["department", "bank"])


@given(roles, ids, ids, owner_roles)
def test_a_banks_dataset_is_seen_only_by_its_bank_and_the_overseers(role, me, owner, owner_role):
    seen = may_see_dataset(role, me, owner, owner_role)
    if role == "enterprise":
        assert not seen  # a subject reads its own records, never schemas
    elif role in ("admin", "auditor") or owner_role == "department":
        assert seen
    else:
        assert seen == (me == owner)


@given(ids, ids)
def test_only_the_owner_changes_a_dataset(me, owner):
    decision = decide_dataset_change(me, owner)
    assert decision.allowed == (me == owner)
    if not decision.allowed:
        assert decision.code == "role_not_allowed"


def test_objections_go_to_departments_only():
    assert decide_objection_target("department").allowed
    refused = decide_objection_target("bank")
    assert not refused.allowed and refused.code == "query_not_allowed"
