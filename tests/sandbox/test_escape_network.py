"""No network from a jail: not the host's loopback, not the world, not DNS, not abstract sockets."""

from __future__ import annotations

import secrets
import socket

import pytest

from tests.sandbox.conftest import everything_said, host_is_fine, run_code

ATTEMPTS = '''
import errno
import socket
import subprocess


def attempt(action):
    try:
        action()
        return "succeeded"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))


def tcp(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect((host, port))
    s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")


def udp(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"leak", (host, port))


def tcp6(host, port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect((host, port))


def raw():
    socket.socket(socket.AF_PACKET, socket.SOCK_RAW)


def attack(inputs, params, blobs):
    port = params["tcp_port"]
    udp_port = params["udp_port"]
    out = {
        "tcp_loopback": attempt(lambda: tcp("127.0.0.1", port)),
        "tcp_localhost": attempt(lambda: tcp("localhost", port)),
        "udp_loopback": attempt(lambda: udp("127.0.0.1", udp_port)),
        "tcp_world": attempt(lambda: tcp("1.1.1.1", 443)),
        "udp_dns_server": attempt(lambda: udp("8.8.8.8", 53)),
        "tcp_private": attempt(lambda: tcp("10.0.0.1", 80)),
        "tcp6_loopback": attempt(lambda: tcp6("::1", port)),
        "raw_packet": attempt(raw),
        "dns": attempt(lambda: socket.getaddrinfo("example.com", 443)),
        "netlink": attempt(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)),
    }
    with open("/proc/self/net/dev") as dev:
        out["interfaces"] = sorted(line.split(":")[0].strip() for line in dev.readlines()[2:])
    curl = subprocess.run(
        ["curl", "-s", "-m", "3", f"http://127.0.0.1:{port}/"], capture_output=True
    )
    out["curl_exit"] = curl.returncode
    return {"values": out}
'''


def accepted(listener: socket.socket) -> bool:
    try:
        connection, _ = listener.accept()
    except BlockingIOError:
        return False
    connection.close()
    return True


def received(listener: socket.socket) -> bool:
    try:
        listener.recv(100)
    except BlockingIOError:
        return False
    return True


def test_no_tcp_udp_dns_or_raw_sockets_anywhere(runner, tcp_listener, udp_listener):
    result = run_code(
        runner,
        ATTEMPTS,
        params={
            "tcp_port": tcp_listener.getsockname()[1],
            "udp_port": udp_listener.getsockname()[1],
        },
    )
    assert result.ok, result.error
    seen = result.values
    # The seccomp filter refuses every non-AF_UNIX socket before any packet could leave.
    for name in ("tcp_loopback", "tcp_localhost", "udp_loopback", "tcp_world", "udp_dns_server",
                 "tcp_private", "tcp6_loopback", "raw_packet", "netlink"):
        assert seen[name] == "EAFNOSUPPORT", (name, seen[name])
    assert seen["dns"] != "succeeded"
    assert seen["curl_exit"] != 0
    # The second layer: the jail's network namespace has nothing but its own loopback.
    assert seen["interfaces"] == ["lo"]
    # And the host's listeners never heard from it.
    assert not accepted(tcp_listener)
    assert not received(udp_listener)
    host_is_fine(runner)


def test_no_connection_to_host_abstract_unix_socket(runner):
    name = f"saferoom-test-{secrets.token_hex(6)}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind("\0" + name)
    server.listen(4)
    server.setblocking(False)
    try:
        result = run_code(
            runner,
            """
            import socket

            def attack(inputs, params, blobs):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect("\\0" + params["name"])
                    return {"values": {"connected": True}}
                except OSError as exc:
                    return {"values": {"connected": False, "errno": exc.errno}}
            """,
            params={"name": name},
        )
        assert result.ok, result.error
        # Abstract sockets belong to a network namespace; the jail's has none of the host's.
        assert result.values["connected"] is False
        assert not accepted(server)
    finally:
        server.close()


@pytest.mark.parametrize("target", ["/run", "/var/run", "/run/dbus/system_bus_socket"])
def test_no_host_ipc_socket_paths(runner, target):
    result = run_code(
        runner,
        """
        import os

        def attack(inputs, params, blobs):
            return {"values": {"exists": os.path.exists(params["path"])}}
        """,
        params={"path": target},
    )
    assert result.ok, result.error
    assert result.values["exists"] is False
    assert "succeeded" not in everything_said(result)
