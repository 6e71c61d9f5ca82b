"""Tests of the jail: unit checks of its parts, escape attempts in a real jail, functional jobs."""
