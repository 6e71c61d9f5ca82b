"""Joint-modeling code that runs inside the sandbox: templates, training, scoring, metrics.

Imported only inside a jail, never by the service process.
"""
