"""Strict decoding of an Arrow IPC stream that came out of a jail.

Exactly one uncompressed stream, no extension types, fully validated, metadata dropped.
"""

from __future__ import annotations

import struct

import pyarrow as pa

from sandbox.errors import OutputRejected

# Message.fbs: Message{version, header_type, header, bodyLength, custom_metadata};
# RecordBatch{length, nodes, buffers, compression}; DictionaryBatch{id, data, isDelta}.
MESSAGE_HEADER_TYPE = 1
MESSAGE_HEADER = 2
RECORD_BATCH_COMPRESSION = 3
DICTIONARY_BATCH_DATA = 1
SCHEMA, DICTIONARY_BATCH, RECORD_BATCH = 1, 2, 3
MAX_MESSAGES = 100_000
EXTENSION_KEY = b"ARROW:extension:name"


def field_position(data: bytes, table: int, index: int) -> int | None:
    """Absolute position of field `index` of the flatbuffer table at `table`, None if absent."""
    (vtable_offset,) = struct.unpack_from("<i", data, table)
    vtable = table - vtable_offset
    (vtable_size,) = struct.unpack_from("<H", data, vtable)
    entry = 4 + 2 * index
    if entry + 2 > vtable_size:
        return None
    (offset,) = struct.unpack_from("<H", data, vtable + entry)
    return table + offset if offset else None


def follow(data: bytes, position: int) -> int:
    """The table a uoffset at `position` points to."""
    (offset,) = struct.unpack_from("<I", data, position)
    return position + int(offset)


def message_is_compressed(metadata: bytes) -> bool:
    """Whether a record or dictionary batch declares body compression (a decompression bomb)."""
    root = follow(metadata, 0)
    kind_at = field_position(metadata, root, MESSAGE_HEADER_TYPE)
    kind = metadata[kind_at] if kind_at is not None else 0
    header_at = field_position(metadata, root, MESSAGE_HEADER)
    if kind == SCHEMA:
        return False
    if kind not in (RECORD_BATCH, DICTIONARY_BATCH) or header_at is None:
        raise OutputRejected("an output table holds an unexpected Arrow message")
    batch = follow(metadata, header_at)
    if kind == DICTIONARY_BATCH:
        data_at = field_position(metadata, batch, DICTIONARY_BATCH_DATA)
        if data_at is None:
            raise OutputRejected("an output table holds a malformed dictionary batch")
        batch = follow(metadata, data_at)
    return field_position(metadata, batch, RECORD_BATCH_COMPRESSION) is not None


def check_messages(buffer: pa.Buffer) -> None:
    reader = pa.ipc.MessageReader.open_stream(pa.BufferReader(buffer))
    for count in range(MAX_MESSAGES + 1):
        try:
            message = reader.read_next_message()
        except StopIteration:
            return
        if count == MAX_MESSAGES:
            break
        if message_is_compressed(message.metadata.to_pybytes()):
            raise OutputRejected("an output table is compressed; only plain Arrow IPC is accepted")
    raise OutputRejected("an output table has too many Arrow messages")


def has_extension(data_type: pa.DataType) -> bool:
    if isinstance(data_type, pa.BaseExtensionType):
        return True
    if isinstance(data_type, pa.DictionaryType):
        return has_extension(data_type.value_type)
    return any(
        has_extension(data_type.field(i).type) or bool(
            data_type.field(i).metadata and EXTENSION_KEY in data_type.field(i).metadata
        )
        for i in range(data_type.num_fields)
    )


def check_schema(schema: pa.Schema) -> pa.Schema:
    """The schema without metadata, or OutputRejected if it carries an extension type.

    Extension types are how a stream asks the reader to run code (pyarrow's pickle-based
    PyExtensionType, CVE-2023-47248); plain columns are all a jail's output needs.
    """
    fields = []
    for f in schema:
        if has_extension(f.type) or (f.metadata and EXTENSION_KEY in f.metadata):
            raise OutputRejected("an output table uses an Arrow extension type")
        fields.append(f.remove_metadata())
    return pa.schema(fields)


def decode_table(buffer: pa.Buffer) -> pa.Table:
    """The one table encoded in `buffer`, checked, or OutputRejected."""
    try:
        check_messages(buffer)
        source = pa.BufferReader(buffer)
        reader = pa.ipc.open_stream(source)
        schema = check_schema(reader.schema)
        table = reader.read_all()
        if source.tell() != buffer.size:
            raise OutputRejected("an output table has bytes after its Arrow stream")
        table.validate(full=True)
        return pa.Table.from_arrays(table.columns, schema=schema)
    except OutputRejected:
        raise
    except (pa.ArrowException, OSError, ValueError, TypeError, struct.error, IndexError) as exc:
        raise OutputRejected("an output table is not a valid Arrow IPC stream") from exc
