"""Only checked outputs come back: blobs stay opaque bytes (never unpickled), tables must be plain
Arrow IPC, values plain JSON, and a forged or malformed result frame is rejected whole.
"""

from __future__ import annotations

import pickle  # noqa: TID251 - only to build a hostile payload; the test asserts it never loads
import secrets
from pathlib import Path

import pytest

from tests.sandbox.conftest import run_code


class Detonator:
    """Unpickling this touches a file: if the file appears, something unpickled our output."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.path,))


@pytest.fixture
def detonation(tmp_path: Path) -> tuple[Path, bytes]:
    marker = tmp_path / f"unpickled-{secrets.token_hex(4)}"
    return marker, pickle.dumps(Detonator(marker))


FORGE = '''
import json, os, struct, sys

def frame(header, *bodies):
    raw = json.dumps(header).encode()
    return b"SRJ1" + struct.pack(">I", len(raw)) + raw + b"".join(bodies)

def attack(inputs, params, blobs):
    out = json.loads(sys.argv[1])["out"]
    body = bytes.fromhex(params["body"])
    header = {"ok": True, "values": {}, "tables": [["t", len(body)]], "blobs": []}
    if params.get("raw_json") is not None:
        raw = params["raw_json"].encode()
        os.write(out, params["magic"].encode() + struct.pack(">I", len(raw)) + raw)
    else:
        os.write(out, frame(header, body))
    os._exit(0)
'''


def test_a_pickle_blob_comes_back_as_inert_bytes(runner, detonation):
    marker, payload = detonation
    result = run_code(
        runner,
        """
        def attack(inputs, params, blobs):
            return {"blobs": {"model": bytes.fromhex(params["payload"])}}
        """,
        params={"payload": payload.hex()},
    )
    assert result.ok, result.error
    assert result.blobs == {"model": payload}
    assert isinstance(result.blobs["model"], bytes)
    assert not marker.exists()


def test_pickle_in_an_arrow_extension_type_is_rejected_unloaded(runner, detonation):
    marker, payload = detonation
    result = run_code(
        runner,
        """
        import pyarrow as pa

        def attack(inputs, params, blobs):
            field = pa.field("x", pa.binary(), metadata={
                b"ARROW:extension:name": b"arrow.py_extension_type",
                b"ARROW:extension:metadata": bytes.fromhex(params["payload"]),
            })
            table = pa.table({"x": pa.array([b"a"])}, schema=pa.schema([field]))
            return {"tables": {"t": table}}
        """,
        params={"payload": payload.hex()},
    )
    assert result.status == "error"
    assert result.error == "OutputRejected: an output table uses an Arrow extension type"
    assert result.tables == {}
    assert not marker.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"not arrow at all",
        b"\xff\xff\xff\xff\x10\x00\x00\x00" + b"\x00" * 16,
    ],
    ids=["garbage", "truncated-message"],
)
def test_a_forged_table_that_is_not_arrow_is_rejected(runner, body):
    result = run_code(runner, FORGE, params={"body": body.hex()})
    assert result.status == "error"
    assert result.error is not None
    assert result.error.startswith("OutputRejected: an output table")
    assert result.tables == {}


def test_a_pickled_table_is_not_accepted_as_a_table(runner, detonation):
    marker, payload = detonation
    result = run_code(runner, FORGE, params={"body": payload.hex()})
    assert result.status == "error"
    assert result.error == "OutputRejected: an output table is not a valid Arrow IPC stream"
    assert not marker.exists()


def test_compressed_arrow_is_refused_before_decompression(runner):
    result = run_code(
        runner,
        """
        import json, os, struct, sys
        import pyarrow as pa

        def attack(inputs, params, blobs):
            table = pa.table({"zeros": pa.array([0] * 2_000_000, pa.int64())})
            sink = pa.BufferOutputStream()
            options = pa.ipc.IpcWriteOptions(compression="zstd")
            with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
                writer.write_table(table)
            body = sink.getvalue().to_pybytes()
            raw = json.dumps({"ok": True, "values": {}, "tables": [["t", len(body)]],
                              "blobs": []}).encode()
            os.write(json.loads(sys.argv[1])["out"],
                     b"SRJ1" + struct.pack(">I", len(raw)) + raw + body)
            os._exit(0)
        """,
    )
    assert result.status == "error"
    assert result.error == (
        "OutputRejected: an output table is compressed; only plain Arrow IPC is accepted"
    )


@pytest.mark.parametrize(
    ("magic", "raw_json"),
    [
        ("SRJ1", "[1, 2]"),
        ("SRJ1", '{"ok": true}'),
        ("XXXX", "{}"),
        ("SRJ1", '{"ok": true, "values": NaN, "tables": [], "blobs": []}'),
        ("SRJ1", '{"ok": true, "values": {}, "tables": [["t", -5]], "blobs": []}'),
        ("SRJ1", '{"ok": true, "values": {}, "tables": [], "blobs": [["b", 1], ["b", 1]]}'),
        ("SRJ1", "[" * 100_000 + "]" * 100_000),
    ],
    ids=["not-an-object", "no-parts", "bad-magic", "nan", "negative-size", "duplicate", "deep"],
)
def test_a_malformed_result_header_is_rejected(runner, magic, raw_json):
    result = run_code(runner, FORGE, params={"body": "", "magic": magic, "raw_json": raw_json})
    assert result.status == "error"
    assert result.error is not None
    assert result.error.startswith("OutputRejected")


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ("[1, 2, 3]", "TypeError: the entry must return a dict"),
        ("{'tables': {'t': 'not a table'}}", "TypeError: tables must map names"),
        ("{'values': {'x': float('nan')}}", "ValueError: Out of range float values"),
        ("{'values': {'x': object()}}", "TypeError: Object of type object"),
        ("{'blobs': {'b': 'text, not bytes'}}", "TypeError: blobs must map names to bytes"),
        ("{'model': 1}", "TypeError: the entry must return a dict"),
    ],
    ids=["list", "table-str", "nan", "object", "blob-str", "unknown-key"],
)
def test_wrong_return_types_are_errors(runner, returned, message):
    result = run_code(
        runner,
        f"""
        def attack(inputs, params, blobs):
            return {returned}
        """,
    )
    assert result.status == "error"
    assert result.error is not None
    assert result.error.startswith(message), result.error


def test_output_names_must_be_identifiers(runner):
    result = run_code(
        runner,
        """
        def attack(inputs, params, blobs):
            return {"blobs": {"../../etc/passwd": b"x"}}
        """,
    )
    assert result.status == "error"
    assert result.error == "OutputRejected: an output name in 'blobs' is not an identifier"
