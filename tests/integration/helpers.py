"""Small builders shared by the HTTP tests: dataset bodies and CSV text with valid keys."""

from __future__ import annotations

import numpy as np

from saferoom import uscc

TAX_SPEC = {
    "name": "tax_annual",
    "description": "annual tax paid",
    "key": "uscc",
    "columns": [
        {"name": "uscc", "type": "string", "role": "key"},
        {"name": "region", "type": "string", "role": "dimension",
         "values": ["410302", "410311"], "classification": "public"},
        {"name": "annual_tax", "type": "int", "role": "measure", "bounds": [0, 10_000_000],
         "classification": "sensitive"},
        {"name": "tax_arrears", "type": "bool", "role": "flag", "classification": "sensitive"},
    ],
    "max_rows_per_subject": 1,
}


def codes(n: int, seed: int = 0) -> list[str]:
    return [str(c) for c in uscc.generate(np.random.default_rng(seed), n, ["410302", "410311"])]


def tax_csv(keys: list[str], base: int = 1000, header: bool = True) -> str:
    lines = ["uscc,region,annual_tax,tax_arrears"] if header else []
    lines += [f"{k},{'410302' if i % 2 else '410311'},{base + i},{'true' if i % 7 == 0 else 'false'}"
              for i, k in enumerate(keys)]
    return "\n".join(lines) + "\n"
