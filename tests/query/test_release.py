"""Exact computation and release: contribution bounds, clipping, domains, suppression, refusals."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from policies.errors import PolicyDenied
from saferoom import dp, uscc
from saferoom.dataset_spec import DatasetCreate
from saferoom.errors import InvalidRequest
from saferoom.query.exact import Clip, ExactCells
from saferoom.query.parse import parse_query
from saferoom.query.release import exact_plan
from saferoom.query.service import QueryRequest, QueryService
from tests.query.conftest import BANK, PURPOSE, QueryRoom, aggregate_policy

SPEC = {
    "name": "loans",
    "key": "uscc",
    "max_rows_per_subject": 2,
    "columns": [
        {"name": "uscc", "type": "string", "role": "key"},
        {"name": "region", "type": "string", "role": "dimension", "values": ["a", "b", "c"]},
        {"name": "kind", "type": "string", "role": "dimension"},
        {"name": "amount", "type": "float", "role": "measure", "bounds": [0, 100]},
        {"name": "late", "type": "bool", "role": "flag"},
    ],
}


def _keys(n: int) -> list[str]:
    return [str(k) for k in uscc.generate(np.random.default_rng(0), n, ["410302"])]


def _table(rows: list[tuple[str, str, str, float, bool]]) -> pa.Table:
    cols = list(zip(*rows, strict=True))
    return pa.table({"uscc": cols[0], "region": cols[1], "kind": cols[2],
                     "amount": cols[3], "late": cols[4]})


def test_sensitivity_from_declared_bounds() -> None:
    schema = DatasetCreate.model_validate(SPEC)
    plan = parse_query("SELECT COUNT(*), SUM(amount), AVG(late) FROM loans", {"loans": schema})
    exact = exact_plan(plan, {"loans": schema})
    names = [q.name for q in exact.quantities]
    assert names == ["n", "rows", "sum:loans.amount", "nonnull:loans.late", "sum:loans.late"]
    assert exact.row_bounds == {"loans": 2}
    assert Clip(0, 100, 100).max_abs == 10_000  # fixed-point cents
    assert exact.quantities[0].kind == "subjects"  # 2 rows per subject: count subjects apart


def _service(qroom: QueryRoom, engine=None) -> QueryService:
    return QueryService(qroom.room, engine)


def _exact_engine(qroom: QueryRoom, monkeypatch, sql: str) -> ExactCells:
    """Run the real engine but capture its exact cells (what the noise is added to)."""
    svc = _service(qroom)
    captured: list[ExactCells] = []
    real = svc._engine.compute

    def spy(exact, sources):
        cells = real(exact, sources)
        captured.append(cells)
        return cells

    monkeypatch.setattr(svc._engine, "compute", spy)
    svc.run(BANK, QueryRequest(sql=sql, epsilon=1, purpose=PURPOSE), qroom.room.call(
                                                                            "query", BANK))
    svc.close()
    return captured[0]


def test_rows_per_subject_bounded_and_values_clipped(qroom: QueryRoom, monkeypatch) -> None:
    k = _keys(3)
    rows = [(k[0], "a", "x", 50.0, True)] * 5 + [(k[1], "a", "x", 1000.0, False),
                                                  (k[2], "b", "x", -7.5, True)]
    qroom.add(SPEC, _table(rows), aggregate_policy())
    qroom.agree(["loans"])
    cells = _exact_engine(qroom, monkeypatch,
                          "SELECT region, COUNT(*), SUM(amount), SUM(late) FROM loans GROUP BY region")
    by_group = {g[0]: i for i, g in enumerate(cells.groups)}
    a = by_group["a"]
    assert cells.values["rows"][a] == 3  # k0 kept 2 of its 5 rows, k1 one
    assert cells.values["n"][a] == 2  # distinct subjects
    assert cells.values["sum:loans.amount"][a] == (50 + 50 + 100) * 100  # 1000 clipped to 100
    assert cells.values["sum:loans.amount"][by_group["b"]] == 0  # -7.5 clipped to 0
    assert cells.values["sum:loans.late"][a] == 2


def test_public_domain_releases_empty_groups_and_suppresses_small(qroom: QueryRoom) -> None:
    k = _keys(40)
    rows = [(key, "a", "x", 10.0, False) for key in k[:30]] + [(key, "b", "x", 10.0, False)
                                                               for key in k[30:33]]
    qroom.add({**SPEC, "max_rows_per_subject": 1}, _table(rows), aggregate_policy())
    qroom.agree(["loans"])
    svc = _service(qroom)
    body = svc.run(BANK, QueryRequest(sql="SELECT region, COUNT(*) AS n FROM loans GROUP BY "
                                      "region", epsilon=5, purpose=PURPOSE),
                   qroom.room.call("query", BANK))
    svc.close()
    rows_out = {r[0]: r[1] for r in body["rows"]}
    assert set(rows_out) == {"a", "b", "c"}  # "c" is empty and still released
    assert rows_out["b"] is None and rows_out["c"] is None  # fewer than 10 enterprises
    assert abs(rows_out["a"] - 30) <= 15
    assert body["suppressed_groups"] == 2


def test_dominated_sums_are_suppressed(qroom: QueryRoom) -> None:
    k = _keys(30)
    rows = [(k[0], "a", "x", 100.0, False), (k[1], "a", "x", 100.0, False)]
    rows += [(key, "a", "x", 0.5, False) for key in k[2:]]
    qroom.add({**SPEC, "max_rows_per_subject": 1}, _table(rows), aggregate_policy())
    qroom.agree(["loans"])
    svc = _service(qroom)
    body = svc.run(BANK, QueryRequest(sql="SELECT region, COUNT(*) AS n, SUM(amount) AS s "
                                      "FROM loans GROUP BY region", epsilon=5, purpose=PURPOSE),
                   qroom.room.call("query", BANK))
    svc.close()
    row = next(r for r in body["rows"] if r[0] == "a")
    assert row[1] is not None and row[2] is None  # count released, dominated sum not


def test_unknown_domain_groups_need_the_noisy_threshold(qroom: QueryRoom) -> None:
    k = _keys(60)
    rows = [(key, "a", "big", 1.0, False) for key in k[:50]] + [(k[50], "a", "tiny", 1.0, False)]
    qroom.add({**SPEC, "max_rows_per_subject": 1}, _table(rows), aggregate_policy())
    qroom.agree(["loans"])
    svc = _service(qroom)
    body = svc.run(BANK, QueryRequest(sql="SELECT kind, COUNT(*) FROM loans GROUP BY kind",
                                      epsilon=5, purpose=PURPOSE),
                   qroom.room.call("query", BANK))
    svc.close()
    assert [r[0] for r in body["rows"]] == ["big"]  # a group of one never appears
    assert body["privacy"]["delta"] > 0


class _NeverEngine:
    def compute(self, exact, sources):
        raise AssertionError("a refused query reached the engine")


@pytest.mark.parametrize(
    ("sql", "purpose", "epsilon", "code"),
    [
        ("SELECT uscc FROM loans", PURPOSE, 1, "query_not_allowed"),
        ("SELECT COUNT(*) FROM loans", "marketing", 1, "purpose_not_allowed"),
        ("SELECT COUNT(*) FROM loans", PURPOSE, 2, "budget_exhausted"),
        ("SELECT COUNT(*) FROM read_csv('x')", PURPOSE, 1, "query_not_allowed"),
    ],
)
def test_refusals_never_reach_the_engine_and_spend_nothing(
    qroom: QueryRoom, sql: str, purpose: str, epsilon: float, code: str
) -> None:
    qroom.add(SPEC, _table([(_keys(1)[0], "a", "x", 1.0, False)]), aggregate_policy(epsilon=1))
    qroom.agree(["loans"])
    svc = _service(qroom, _NeverEngine())
    with pytest.raises(PolicyDenied) as info:
        svc.run(BANK, QueryRequest(sql=sql, epsilon=epsilon, purpose=purpose),
                qroom.room.call("query", BANK))
    assert info.value.code == code
    assert svc.budgets(BANK)["budgets"]["loans"]["spent"] == 0


def test_no_policy_section_means_no_queries(qroom: QueryRoom) -> None:
    qroom.add(SPEC, _table([(_keys(1)[0], "a", "x", 1.0, False)]), {"verify": None})
    qroom.agree(["loans"])
    svc = _service(qroom, _NeverEngine())
    with pytest.raises(PolicyDenied) as info:
        svc.run(BANK, QueryRequest(sql="SELECT COUNT(*) FROM loans", epsilon=1, purpose=PURPOSE),
                qroom.room.call("query", BANK))
    assert info.value.code == "query_not_allowed"


def test_gaussian_option_reports_delta() -> None:
    spec = dp.gaussian_for(1, 0.5)
    assert dp.privacy_loss(spec) <= 0.5 + 1e-12
    assert spec.mechanism == "discrete_gaussian"


def test_gaussian_queries_spend_epsilon_and_report_delta(qroom: QueryRoom) -> None:
    k = _keys(50)
    qroom.add({**SPEC, "max_rows_per_subject": 1},
              _table([(key, "a", "x", 10.0, False) for key in k]), aggregate_policy(epsilon=2))
    qroom.agree(["loans"])
    svc = _service(qroom)
    body = svc.run(BANK, QueryRequest(sql="SELECT COUNT(*) AS n FROM loans", epsilon=1,
                                      purpose=PURPOSE, mechanism="discrete_gaussian"),
                   qroom.room.call("query", BANK))
    svc.close()
    assert body["privacy"]["mechanism"] == "discrete_gaussian"
    assert body["privacy"]["delta"] == pytest.approx(1e-6)
    assert abs(body["rows"][0][0] - 50) <= 4 * body["privacy"]["ci95"]["n"]
    assert body["budget"]["loans"]["spent"] == 1.0


def test_bank_may_narrow_clipping_bounds_inside_the_declared_ones(qroom: QueryRoom, monkeypatch):
    k = _keys(3)
    rows = [(k[0], "a", "x", 50.0, True), (k[1], "a", "x", 90.0, False),
            (k[2], "a", "x", 5.0, False)]
    qroom.add({**SPEC, "max_rows_per_subject": 1}, _table(rows), aggregate_policy())
    qroom.agree(["loans"])
    svc = _service(qroom)
    captured = []
    real = svc._engine.compute
    monkeypatch.setattr(svc._engine, "compute",
                        lambda e, s: captured.append(real(e, s)) or captured[-1])
    request = QueryRequest(sql="SELECT SUM(amount) AS s FROM loans", epsilon=1, purpose=PURPOSE,
                           bounds={"loans.amount": (0, 10)})
    body = svc.run(BANK, request, qroom.room.call("query", BANK))
    assert captured[0].values["sum:loans.amount"][0] == (10 + 10 + 5) * 100
    # ε split 10:1 between the released sum and the count used only for suppression
    assert body["privacy"]["noise_scale"]["s"] == pytest.approx(10 / (10 / 11), rel=1e-5)
    for bad in ({"loans.amount": (0, 1000)}, {"loans.region": (0, 1)}, {"amount": (0, 1)},
                {"loans.amount": (5, 5)}):
        with pytest.raises(InvalidRequest):
            svc.run(BANK, QueryRequest(sql="SELECT SUM(amount) FROM loans", epsilon=1,
                                       purpose=PURPOSE, bounds=bad),
                    qroom.room.call("query", BANK))
    svc.close()
