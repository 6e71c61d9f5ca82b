"""Joint-modeling code that runs inside the sandbox: feature encoding, templates, training, scoring.

Imported only inside a jail (entry points in `models.entry`), never by the service process.
"""
