"""The jail: runs untrusted or template Python with no network and no host files.

Built on bubblewrap; if the jail cannot start, nothing runs (fail closed).
"""
