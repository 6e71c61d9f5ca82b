"""Tests of the tamper-evident audit log: Merkle proofs, chain, signatures, tampering, crashes."""
