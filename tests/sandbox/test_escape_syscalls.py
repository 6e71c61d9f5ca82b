"""The seccomp filter and namespaces from inside: dangerous syscalls, foreign ABIs, terminal
injection, signals to the host, setuid binaries and child processes all fail.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest

from tests.sandbox.conftest import everything_said, host_is_fine, run_code

SYSCALLS = '''
import ctypes
import errno

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def call(number, *args):
    result = libc.syscall(ctypes.c_long(number), *[ctypes.c_long(a) for a in args])
    return "ok" if result >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")


X32 = 0x40000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
SIGCHLD = 17


def attack(inputs, params, blobs):
    getppid = libc.getppid()
    return {"values": {
        "socket_inet": call(41, 2, 1, 0),
        "socket_inet_high_word": call(41, (1 << 32) | 2, 1, 0),
        "socket_unix": call(41, 1, 1, 0),
        "socketpair_inet": call(53, 2, 1, 0, 0),
        "ptrace_attach_parent": call(101, 16, getppid, 0, 0),
        "ptrace_traceme": call(101, 0, 0, 0, 0),
        "mount": call(165, 0, 0, 0, 0, 0),
        "umount2": call(166, 0, 0),
        "pivot_root": call(155, 0, 0),
        "chroot": call(161, 0),
        "unshare_user": call(272, CLONE_NEWUSER),
        "setns": call(308, 0, 0),
        "clone_newuser": call(56, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0),
        "clone_newnet": call(56, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0),
        "clone3": call(435, 0, 0),
        "keyctl": call(250, 0, 0, 0, 0),
        "add_key": call(248, 0, 0, 0, 0, 0),
        "request_key": call(249, 0, 0, 0, 0),
        "bpf": call(321, 0, 0, 0),
        "perf_event_open": call(298, 0, 0, -1, -1, 0),
        "userfaultfd": call(323, 0),
        "io_uring_setup": call(425, 1, 0),
        "kexec_load": call(246, 0, 0, 0, 0),
        "init_module": call(175, 0, 0, 0),
        "finit_module": call(313, -1, 0, 0),
        "process_vm_readv": call(310, 1, 0, 0, 0, 0, 0),
        "open_by_handle_at": call(304, 0, 0, 0),
        "personality": call(135, 0x0400000),
        "syslog": call(103, 3, 0, 0),
        "x32_getpid": call(X32 | 39),
        "x32_socket": call(X32 | 41, 2, 1, 0),
        "x32_mount": call(X32 | 165, 0, 0, 0, 0, 0),
        "unreviewed_new_syscall": call(470),
        "getpid_still_works": call(39),
    }}
'''

DENIED = {
    "socket_inet": "EAFNOSUPPORT",
    "socket_inet_high_word": "EAFNOSUPPORT",
    "socketpair_inet": "EAFNOSUPPORT",
    "ptrace_attach_parent": "EPERM",
    "ptrace_traceme": "EPERM",
    "mount": "EPERM",
    "umount2": "EPERM",
    "pivot_root": "EPERM",
    "chroot": "EPERM",
    "unshare_user": "EPERM",
    "setns": "EPERM",
    "clone_newuser": "EPERM",
    "clone_newnet": "EPERM",
    "clone3": "ENOSYS",
    "keyctl": "EPERM",
    "add_key": "EPERM",
    "request_key": "EPERM",
    "bpf": "EPERM",
    "perf_event_open": "EPERM",
    "userfaultfd": "EPERM",
    "io_uring_setup": "EPERM",
    "kexec_load": "EPERM",
    "init_module": "EPERM",
    "finit_module": "EPERM",
    "process_vm_readv": "EPERM",
    "open_by_handle_at": "EPERM",
    "personality": "EPERM",
    "syslog": "EPERM",
    "x32_getpid": "EPERM",
    "x32_socket": "EPERM",
    "x32_mount": "EPERM",
    "unreviewed_new_syscall": "ENOSYS",
}


def test_dangerous_syscalls_are_refused_by_the_filter(runner):
    result = run_code(runner, SYSCALLS)
    assert result.ok, result.error
    seen = result.values
    assert {name: seen[name] for name in DENIED} == DENIED
    assert seen["socket_unix"] == "ok"
    assert seen["getpid_still_works"] == "ok"


I386_SOCKET = '''
import ctypes
import mmap

# push rbx; mov eax, 359 (i386 socket); mov ebx, 2 (AF_INET); mov ecx, 1; xor edx, edx;
# int 0x80; pop rbx; ret
CODE = bytes([0x53, 0xB8, 0x67, 0x01, 0, 0, 0xBB, 2, 0, 0, 0, 0xB9, 1, 0, 0, 0, 0x31, 0xD2,
              0xCD, 0x80, 0x5B, 0xC3])


def attack(inputs, params, blobs):
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(CODE)
    address = ctypes.addressof(ctypes.c_char.from_buffer(page))
    fd = ctypes.CFUNCTYPE(ctypes.c_int)(address)()
    return {"values": {"fd": fd}}
'''


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="i386 ABI exists on x86_64 only")
def test_i386_abi_via_int80_kills_the_jail(runner):
    result = run_code(runner, I386_SOCKET)
    assert result.status == "error"
    assert result.error == "killed by the seccomp filter (SIGSYS)"
    assert result.values == {}
    host_is_fine(runner)


def test_terminal_injection_ioctl_is_refused(runner):
    result = run_code(
        runner,
        """
        import ctypes, errno, os

        libc = ctypes.CDLL(None, use_errno=True)

        def ioctl(fd, request):
            char = ctypes.c_char(b"x")
            r = libc.ioctl(ctypes.c_int(fd), ctypes.c_ulong(request), ctypes.byref(char))
            return "ok" if r == 0 else errno.errorcode.get(ctypes.get_errno())

        def attack(inputs, params, blobs):
            try:
                tty = os.open("/dev/tty", os.O_RDWR)
                tty_open = "opened"
            except OSError as exc:
                tty, tty_open = 0, errno.errorcode.get(exc.errno)
            return {"values": {
                "tty_open": tty_open,
                "tiocsti": ioctl(tty, 0x5412),
                "tiocsti_high_bits": ioctl(tty, (1 << 32) | 0x5412),
                "tioclinux": ioctl(tty, 0x541C),
                "sid_is_own": os.getsid(0) == os.getpid(),
            }}
        """,
    )
    assert result.ok, result.error
    seen = result.values
    assert seen["tty_open"] != "opened"  # --new-session: no controlling terminal at all
    assert seen["tiocsti"] == seen["tiocsti_high_bits"] == seen["tioclinux"] == "EPERM"
    assert seen["sid_is_own"] is True


def test_signals_cannot_reach_the_host(runner):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        result = run_code(
            runner,
            """
            import errno, os, signal, time

            def send(pid, sig=signal.SIGKILL):
                try:
                    os.kill(pid, sig)
                    return "sent"
                except OSError as exc:
                    return errno.errorcode.get(exc.errno)

            def attack(inputs, params, blobs):
                out = {
                    "ppid": os.getppid(),
                    "kill_service": send(params["service"]),
                    "kill_service_parent": send(params["service_parent"]),
                    "kill_sleeper": send(params["sleeper"]),
                    "kill_host_init": send(1 if os.getpid() != 1 else -1, signal.SIGTERM),
                    "kill_everything": send(-1),
                }
                # A child signalling its parent (this jail's pid 1) from inside the jail.
                child = os.fork()
                if child == 0:
                    os.kill(os.getppid(), signal.SIGKILL)
                    os._exit(0)
                os.waitpid(child, 0)
                out["survived_child"] = True
                return {"values": out}
            """,
            params={"service": os.getpid(), "service_parent": os.getppid(),
                    "sleeper": sleeper.pid},
        )
        assert result.ok, result.error
        seen = result.values
        assert seen["ppid"] == 0  # the service is outside the pid namespace: it has no pid here
        assert seen["kill_service"] == "ESRCH"
        assert seen["kill_service_parent"] == "ESRCH" or os.getppid() < 4
        assert seen["kill_sleeper"] == "ESRCH"
        assert seen["survived_child"] is True
        assert sleeper.poll() is None  # the host process is untouched
    finally:
        sleeper.kill()
        sleeper.wait()
    host_is_fine(runner)


def test_child_processes_get_no_network_no_host_files_no_privileges(runner, tmp_path, monkeypatch):
    # A real host secret, readable on the host, in a place the jail does not mount; and a
    # secret in the service's environment.
    secret = secrets.token_hex(32)
    key = tmp_path / "data" / "master.key"
    key.parent.mkdir()
    key.write_text(secret)
    assert key.read_text() == secret
    token = f"admin-{secrets.token_hex(16)}"
    monkeypatch.setenv("SAFEROOM_ADMIN_TOKEN", token)
    result = run_code(
        runner,
        """
        import os, subprocess

        def run(argv):
            try:
                p = subprocess.run(argv, capture_output=True, timeout=20)
                return {"code": p.returncode, "out": p.stdout.decode(errors="replace")[:500],
                        "err": p.stderr.decode(errors="replace")[-500:]}
            except (OSError, subprocess.SubprocessError) as exc:
                return {"code": -1, "out": "", "err": repr(exc)}

        def attack(inputs, params, blobs):
            key = params["key"]
            system_cat = os.system("cat /etc/shadow " + key + " > /tmp/o 2>&1")
            with open("/tmp/o", errors="replace") as f:
                system_cat_said = f.read()[-500:]
            return {"values": {
                "system_cat": system_cat,
                "system_cat_said": system_cat_said,
                "curl": run(["curl", "-s", "-m", "3", "http://example.com/"]),
                "sh": run(["sh", "-c", "cat /etc/shadow " + key + "; ls /root/.ssh; id -u; "
                           "echo $SAFEROOM_ADMIN_TOKEN"]),
                "python": run([params["python"], "-c",
                               "import socket; socket.create_connection(('127.0.0.1', 22), 2)"]),
                "python_files": run([params["python"], "-c", f"print(open({key!r}).read())"]),
                "setuid_mount": run(["/usr/bin/mount", "-t", "tmpfs", "none", "/tmp"]),
                "setuid_su": run(["/usr/bin/su", "-c", "id"]),
                "euid": os.geteuid(),
                "environ": dict(os.environ),
            }}
        """,
        params={"key": str(key), "python": sys.executable},
    )
    assert result.ok, result.error
    seen = result.values
    assert seen["system_cat"] != 0
    assert seen["curl"]["code"] != 0
    assert "root:" not in seen["sh"]["out"]
    # Only `id -u` printed anything: not the shadow file, the key, nor the token.
    assert seen["sh"]["out"].split() == [str(seen["euid"])]
    assert seen["python"]["code"] != 0
    assert "Address family not supported" in seen["python"]["err"]
    assert seen["python_files"]["code"] != 0
    assert seen["setuid_mount"]["code"] != 0  # nosuid binds and no_new_privs: no root
    assert seen["setuid_su"]["code"] != 0
    assert seen["euid"] != 0
    said = everything_said(result)
    assert secret not in said
    assert token not in said
    assert not any(name.startswith("SAFEROOM") for name in seen["environ"])
    assert "SAFEROOM" not in said
