"""Code that runs inside the jail: the bootstrap, the wire format it shares with the host, a probe.

Bound read-only into every jail as package `saferoom_jail`; it imports only stdlib and pyarrow.
"""
