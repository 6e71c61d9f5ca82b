"""Name types shared by policy documents and consents: purposes, datasets, fields.

One grammar for all three keeps audit records, SQL references and receipts unambiguous.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

# The api.md dataset-name grammar; purposes and fields use it too, so a name never needs quoting
# in SQL, in a "dataset.field" reference or in an audit event.
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
_NAME = re.compile(NAME_PATTERN)

FIELD_REF_PATTERN = r"^[a-z][a-z0-9_]{0,63}\.[a-z][a-z0-9_]{0,63}$"

Purpose = Annotated[str, StringConstraints(strict=True, pattern=NAME_PATTERN)]
DatasetName = Annotated[str, StringConstraints(strict=True, pattern=NAME_PATTERN)]
FieldName = Annotated[str, StringConstraints(strict=True, pattern=NAME_PATTERN)]
FieldRef = Annotated[str, StringConstraints(strict=True, pattern=FIELD_REF_PATTERN)]


def is_name(text: str) -> bool:
    """True if `text` is a valid purpose, dataset or field name."""
    return _NAME.fullmatch(text) is not None


def field_ref(dataset: str, field: str) -> str:
    """The qualified `dataset.field` reference that consents and model features use."""
    return f"{dataset}.{field}"


def split_field_ref(ref: str) -> tuple[str, str] | None:
    """`("dataset", "field")` for a well-formed `dataset.field` reference, else None."""
    dataset, dot, field = ref.partition(".")
    if not dot or not is_name(dataset) or not is_name(field):
        return None
    return dataset, field
