"""Unit and property tests of the pure policy decisions."""
