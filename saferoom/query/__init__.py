"""Differentially private aggregate queries: parse bank SQL to a plan, check, compute, release."""
