"""Datasets over HTTP: declare, upload (CSV, Parquet, replace, append), refuse bad rows whole."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from saferoom import uscc
from tests.integration.conftest import Server, start_server
from tests.integration.helpers import TAX_SPEC, codes, tax_csv

CSV = {"Content-Type": "text/csv"}


@pytest.fixture(scope="module")
def dept(server: Server) -> dict:
    return server.new_principal("department", "tax bureau")


@pytest.fixture(scope="module")
def tax(server: Server, dept: dict) -> dict:
    with server.client(dept["token"]) as c:
        r = c.post("/v1/datasets", json=TAX_SPEC)
    assert r.status_code == 201, r.text
    return r.json()


def test_create_describes_schema_and_refuses_duplicates(server: Server, dept: dict, tax: dict):
    assert tax["name"] == "tax_annual" and tax["rows"] == 0 and tax["version"] == 0
    assert tax["id"].startswith("ds_") and tax["private"] is False
    with server.client(dept["token"]) as c:
        again = c.post("/v1/datasets", json=TAX_SPEC)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"name": "Bad-Name"}, "name"),
        ({"columns": [{"name": "uscc", "type": "int", "role": "key"},
                      {"name": "x", "type": "int", "role": "measure", "bounds": [0, 1]}]},
         "columns"),
        ({"columns": [{"name": "uscc", "type": "string", "role": "key"},
                      {"name": "x", "type": "int", "role": "measure"}]}, "columns"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_specs_are_422_naming_the_field(server: Server, dept: dict, change, where):
    with server.client(dept["token"]) as c:
        r = c.post("/v1/datasets", json={**TAX_SPEC, "name": "other", **change})
    assert r.status_code == 422
    body = r.json()["error"]
    assert body["code"] == "invalid_request"
    assert any(where in [str(p) for p in e["loc"]] for e in body["detail"]["errors"])


def test_enterprise_and_auditor_may_not_create(server: Server):
    ent = server.new_principal("enterprise", uscc=codes(1, seed=99)[0])
    aud = server.new_principal("auditor")
    for who in (ent, aud):
        with server.client(who["token"]) as c:
            r = c.post("/v1/datasets", json={**TAX_SPEC, "name": "nope"})
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "role_not_allowed"


def test_upload_replace_append_and_bad_rows_are_all_or_nothing(server, dept, tax):
    keys = codes(50, seed=1)
    with server.client(dept["token"]) as c:
        url = f"/v1/datasets/{tax['id']}/data"
        r = c.put(url, content=tax_csv(keys[:30]), headers=CSV)
        assert r.status_code == 200, r.text
        assert r.json() == {"rows": 30, "version": 1}
        r = c.put(url + "?mode=append", content=tax_csv(keys[30:]), headers=CSV)
        assert r.json() == {"rows": 50, "version": 2}

        bad = tax_csv(keys[:10]).splitlines()
        bad[7] = bad[7].replace(",false", ",perhaps").replace(",true", ",perhaps")
        r = c.put(url + "?mode=append", content="\n".join(bad) + "\n", headers=CSV)
        assert r.status_code == 422
        err = r.json()["error"]
        assert err["code"] == "invalid_data"
        assert err["detail"] == {"row": 7, "column": "tax_arrears"}
        assert "perhaps" not in r.text

        r = c.put(url, content=tax_csv(keys[:5]).replace(keys[3], keys[3][:-1] + "0"),
                  headers=CSV)
        if uscc.is_valid(keys[3][:-1] + "0"):
            pytest.skip("the altered code happened to be valid")
        assert r.status_code == 422 and r.json()["error"]["detail"]["column"] == "uscc"

        d = c.get(f"/v1/datasets/{tax['id']}").json()
    assert (d["rows"], d["version"]) == (50, 2)


def test_parquet_upload(server, dept):
    with server.client(dept["token"]) as c:
        ds = c.post("/v1/datasets", json={**TAX_SPEC, "name": "tax_parquet"}).json()
        keys = codes(20, seed=3)
        table = pa.table({"uscc": keys, "region": ["410302"] * 20,
                          "annual_tax": list(range(20)), "tax_arrears": [False] * 20})
        buf = io.BytesIO()
        pq.write_table(table, buf)
        r = c.put(f"/v1/datasets/{ds['id']}/data", content=buf.getvalue(),
                  headers={"Content-Type": "application/vnd.apache.parquet"})
        assert r.json() == {"rows": 20, "version": 1}, r.text
        r = c.put(f"/v1/datasets/{ds['id']}/data", content=b"not parquet",
                  headers={"Content-Type": "application/vnd.apache.parquet"})
        assert r.status_code == 422
        r = c.put(f"/v1/datasets/{ds['id']}/data", content=b"{}",
                  headers={"Content-Type": "application/json"})
        assert r.status_code == 415


def test_bank_private_datasets_are_invisible_to_others(server):
    bank_a, bank_b = server.new_principal("bank"), server.new_principal("bank")
    dept = server.new_principal("department")
    with server.client(bank_a["token"]) as a:
        own = a.post("/v1/datasets", json={**TAX_SPEC, "name": "bank_a_labels"}).json()
        assert own["private"] is True
    with server.client(bank_b["token"]) as b:
        assert b.get(f"/v1/datasets/{own['id']}").status_code == 404
        assert b.get(f"/v1/datasets/{own['id']}/mock").status_code == 404
        r = b.put(f"/v1/datasets/{own['id']}/data", content="x", headers=CSV)
        assert r.status_code == 404
        assert own["id"] not in [d["id"] for d in b.get("/v1/datasets").json()["datasets"]]
        assert b.get("/v1/datasets/ds_doesnotexist").json() == r.json()
    with server.client(dept["token"]) as d:
        assert d.get(f"/v1/datasets/{own['id']}").status_code == 404


def test_others_may_not_upload_to_a_department_dataset(server, tax):
    other = server.new_principal("department")
    with server.client(other["token"]) as c:
        r = c.put(f"/v1/datasets/{tax['id']}/data", content=tax_csv(codes(2)), headers=CSV)
    assert r.status_code == 403 and r.json()["error"]["code"] == "role_not_allowed"


def test_mock_rows_follow_schema_not_data(server, dept, tax):
    bank = server.new_principal("bank")
    with server.client(bank["token"]) as c:
        r = c.get(f"/v1/datasets/{tax['id']}/mock?rows=200")
        assert r.status_code == 200
        body = r.json()
        assert c.get(f"/v1/datasets/{tax['id']}/mock?rows=0").status_code == 422
    assert body["columns"] == ["uscc", "region", "annual_tax", "tax_arrears"]
    assert len(body["rows"]) == 200
    real = set(codes(50, seed=1))
    for key, region, annual_tax, arrears in body["rows"]:
        assert uscc.is_valid(key) and key not in real
        assert region in ("410302", "410311")
        assert 0 <= annual_tax <= 10_000_000
        assert isinstance(arrears, bool)


def test_upload_over_the_limit_is_413_and_changes_nothing(tmp_path):
    s = start_server(tmp_path / "data", {"SAFEROOM_MAX_UPLOAD_BYTES": "4096"})
    try:
        dept = s.new_principal("department")
        with s.client(dept["token"]) as c:
            ds = c.post("/v1/datasets", json=TAX_SPEC).json()
            r = c.put(f"/v1/datasets/{ds['id']}/data", content=tax_csv(codes(500)), headers=CSV)
            assert r.status_code == 413
            assert r.json()["error"]["code"] == "payload_too_large"
            assert c.get(f"/v1/datasets/{ds['id']}").json()["version"] == 0
            r = c.put(f"/v1/datasets/{ds['id']}/data", content=tax_csv(codes(5)), headers=CSV)
            assert r.json()["version"] == 1
    finally:
        s.stop()
