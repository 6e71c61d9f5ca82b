"""Pure decisions: who may do what with which data, and what privacy it costs.

Facts in, decision out: nothing here does I/O, so every rule is unit- and property-testable.
"""
