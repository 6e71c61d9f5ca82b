"""The self-check entry: run inside a fresh jail, it reports what the jail looks like from inside.

`check_jail` compares the report with what a sealed jail must look like, and fails closed.
"""

from __future__ import annotations

import os
import socket
from typing import Any


def status_field(name: str) -> str:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    return ""


def inet_socket_refused() -> bool:
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
    except OSError:
        return True
    return False


def look_around(inputs: dict[str, Any], params: dict[str, Any], blobs: dict[str, bytes]) -> Any:
    """Facts only, no secrets: what the host verifies before it lets any job run."""
    return {
        "values": {
            "seccomp": status_field("Seccomp"),
            "no_new_privs": status_field("NoNewPrivs"),
            "cap_eff": status_field("CapEff"),
            "pid": os.getpid(),
            "inet_socket_refused": inet_socket_refused(),
            "env": sorted(os.environ),
            "tables": sorted(inputs),
            "echo": params.get("echo"),
        }
    }
