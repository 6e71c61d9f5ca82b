"""The service over HTTP: bootstrapping, tokens, the error envelope, principals and keys."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.conftest import Server
from tests.integration.helpers import codes

ENVELOPE_KEYS = {"code", "message", "detail"}


def _assert_envelope(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == ENVELOPE_KEYS
    assert body["error"]["code"] == code
    assert "Traceback" not in r.text and 'File "' not in r.text
    return body["error"]


def test_health_and_openapi(server: Server):
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    assert "/v1/datasets/{dataset_id}/data" in paths and "/v1/principals" in paths


@pytest.mark.parametrize("header", [None, "Bearer nope", "Bearer sr_0123456789abcdef.x", "Basic x"])
def test_unauthenticated_is_401(server: Server, header):
    headers = {"Authorization": header} if header else {}
    r = httpx.get(server.url + "/v1/me", headers=headers)
    _assert_envelope(r, 401, "unauthenticated")


def test_principals_roles_and_tokens(server: Server):
    bank = server.new_principal("bank", "洛阳银行")
    assert bank["token"].startswith("sr_") and len(bank["token"]) > 50
    with server.client(bank["token"]) as c:
        assert c.get("/v1/me").json() == {"id": bank["id"], "role": "bank", "name": "洛阳银行"}
        _assert_envelope(c.post("/v1/principals", json={"role": "bank", "name": "x"}), 403,
                         "role_not_allowed")
    # The token works only whole: a changed secret is refused.
    with server.client(bank["token"][:-2] + "xx") as c:
        _assert_envelope(c.get("/v1/me"), 401, "unauthenticated")


def test_enterprise_needs_a_valid_uscc_once(server: Server):
    code = codes(1, seed=42)[0]
    ent = server.new_principal("enterprise", "洛阳某某有限公司", uscc=code)
    assert ent["uscc"] == code
    with server.admin() as c:
        _assert_envelope(c.post("/v1/principals", json={"role": "enterprise", "name": "x",
                                                        "uscc": code}), 409, "conflict")
        bad = code[:-1] + ("0" if code[-1] != "0" else "1")
        err = _assert_envelope(
            c.post("/v1/principals", json={"role": "enterprise", "name": "x", "uscc": bad}),
            422, "invalid_request")
        assert bad not in str(err)
        _assert_envelope(c.post("/v1/principals", json={"role": "bank", "name": "x",
                                                        "uscc": code}), 422, "invalid_request")
        _assert_envelope(c.post("/v1/principals", json={"role": "root", "name": "x"}), 422,
                         "invalid_request")
        _assert_envelope(c.post("/v1/principals", json={"role": "bank", "name": "x",
                                                        "extra": 1}), 422, "invalid_request")
        _assert_envelope(c.post("/v1/principals", content=b"{not json",
                                headers={"Content-Type": "application/json"}), 422,
                         "invalid_request")


def test_unknown_routes_and_methods_use_the_envelope(server: Server):
    with server.admin() as c:
        _assert_envelope(c.get("/v1/nothing-here"), 404, "not_found")
        _assert_envelope(c.delete("/v1/principals"), 405, "method_not_allowed")


def test_oversized_json_is_413(server: Server):
    with server.admin() as c:
        r = c.post("/v1/principals", content=b'{"role":"bank","name":"' + b"x" * (9 << 20) + b'"}',
                   headers={"Content-Type": "application/json"})
    _assert_envelope(r, 413, "payload_too_large")


def test_public_keys_are_published_without_auth(server: Server):
    keys = httpx.get(server.url + "/v1/keys").json()["keys"]
    assert keys[0]["alg"] == "Ed25519" and len(bytes.fromhex(keys[0]["public_key"])) == 32
