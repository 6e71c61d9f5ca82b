"""No host files from a jail: not the data dir, keys, repository, /etc/shadow, /root, the service's
environment or /proc; writes land only in a private, size-capped /tmp that vanishes.
"""

from __future__ import annotations

import os
import secrets
import sys
import threading
import time
from pathlib import Path

import pytest

from sandbox import PythonRuntime
from sandbox.command import JAIL_ENV, SYSTEM_TOP_DIRS
from tests.sandbox.conftest import (
    REPO,
    TEST_LIMITS,
    everything_said,
    host_is_fine,
    jail_processes,
    run_code,
)

RUNTIME = PythonRuntime.current()

PROBE_PATHS = '''
import errno
import os


def look(path):
    try:
        with open(path, "rb") as f:
            return "read:" + f.read(64).hex()
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))


def listing(path):
    try:
        return sorted(os.listdir(path))
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))


def attack(inputs, params, blobs):
    return {"values": {
        "files": {p: look(p) for p in params["files"]},
        "dirs": {p: listing(p) for p in params["dirs"]},
    }}
'''


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fake SafeRoom data dir with a master key and a state DB, as the service would have."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "master.key").write_bytes(secrets.token_bytes(32))
    (data / "state.duckdb").write_bytes(b"SECRET-STATE-" + secrets.token_bytes(16))
    (data / "datasets").mkdir()
    (data / "datasets" / "tax.sealed").write_bytes(b"SECRET-ROWS")
    return data


def test_host_files_are_not_there(runner, data_dir):
    files = [
        str(data_dir / "master.key"),
        str(data_dir / "state.duckdb"),
        str(data_dir / "datasets" / "tax.sealed"),
        str(REPO / "pyproject.toml"),
        str(REPO / "saferoom" / "settings.py"),
        "/etc/shadow",
        "/etc/passwd",
        "/root/.bash_history",
        "/root/.ssh/id_rsa",
        f"/proc/{os.getpid()}/environ",
        f"/proc/{os.getppid()}/environ",
        "/proc/1/environ",
        "/proc/kcore",
        "/sys/kernel/notes",
    ]
    dirs = [str(data_dir), str(data_dir.parent), str(REPO), "/root", "/home", "/etc", "/", "/proc"]
    result = run_code(runner, PROBE_PATHS, params={"files": files, "dirs": dirs})
    assert result.ok, result.error
    seen = result.values
    for path in files:
        if path == "/proc/1/environ":
            continue  # the jail's own pid 1, checked below
        assert not seen["files"][path].startswith("read:"), path
    for path in (str(data_dir), str(data_dir.parent), "/home", "/etc"):
        assert seen["dirs"][path] == "ENOENT", path
    # /root exists only if the Python runtime lives under it, and then holds only that path.
    on_the_way = sorted({r.relative_to("/root").parts[0] for r in RUNTIME.roots
                         if r.is_relative_to("/root")})
    assert seen["dirs"]["/root"] == (on_the_way or "ENOENT")
    # The repository root exists only as a mount point on the way to the runtime (.venv).
    assert set(seen["dirs"][str(REPO)]) <= {".venv"}
    # / holds the system dirs, the jail's own mounts, and the first step towards the runtime
    # (wherever the checkout lives: /work, /root, /home/runner, ...).
    towards_runtime = {root.parts[1] for root in RUNTIME.roots}
    assert set(seen["dirs"]["/"]) <= {*SYSTEM_TOP_DIRS, "dev", "jail", "proc", "tmp", "usr",
                                      *towards_runtime}
    assert set(seen["dirs"]["/proc"]) & {str(os.getpid()), str(os.getppid())} == set()
    said = everything_said(result)
    for secret in (data_dir / "master.key", data_dir / "state.duckdb"):
        assert secret.read_bytes()[:16].hex() not in said


def test_admin_token_in_service_env_never_reaches_the_jail(runner, monkeypatch):
    token = "tok-" + secrets.token_urlsafe(24)
    monkeypatch.setenv("SAFEROOM_ADMIN_TOKEN", token)
    monkeypatch.setenv("SAFEROOM_MASTER_KEY", token + "-key")
    monkeypatch.setenv("PYTHONPATH", "/root/evil")
    result = run_code(
        runner,
        """
        import os

        def read(path):
            try:
                with open(path, "rb") as f:
                    return f.read().decode(errors="replace")
            except OSError as exc:
                return str(exc)

        def attack(inputs, params, blobs):
            procs = [p for p in os.listdir("/proc") if p.isdigit()]
            return {"values": {
                "environ": dict(os.environ),
                "proc_self": read("/proc/self/environ"),
                "proc_all": {p: read(f"/proc/{p}/environ") for p in procs},
                "cmdlines": {p: read(f"/proc/{p}/cmdline") for p in procs},
            }}
        """,
    )
    assert result.ok, result.error
    said = everything_said(result)
    assert token not in said
    assert "SAFEROOM_" not in said
    assert "/root/evil" not in said
    assert set(result.values["environ"]) <= {*JAIL_ENV, "PWD"}


def test_writes_only_to_private_tmp(runner):
    marker = f"saferoom-escape-{secrets.token_hex(6)}"
    result = run_code(
        runner,
        """
        import errno
        import os

        def write(path):
            try:
                with open(path, "w") as f:
                    f.write("x")
                return "wrote"
            except OSError as exc:
                return errno.errorcode.get(exc.errno, str(exc.errno))

        def attack(inputs, params, blobs):
            name = params["marker"]
            targets = ["/" + name, "/usr/" + name, "/dev/" + name, "/dev/shm/" + name,
                       "/jail/lib/" + name, "/jail/boot/saferoom_jail/bootstrap.py",
                       "/proc/sys/kernel/hostname", "/proc/sys/kernel/core_pattern",
                       params["venv"] + "/" + name, "/tmp/" + name]
            return {"values": {t: write(t) for t in targets}}
        """,
        params={"marker": marker, "venv": os.path.realpath(REPO / ".venv")},
    )
    assert result.ok, result.error
    outcomes = result.values
    assert outcomes.pop("/tmp/" + marker) == "wrote"
    assert all(v in {"EROFS", "EACCES", "EPERM", "ENOENT"} for v in outcomes.values()), outcomes
    # The jail's /tmp is its own tmpfs: nothing it wrote exists on the host.
    assert not (Path("/tmp") / marker).exists()
    assert not list(Path("/").glob(marker))
    assert not list((REPO / ".venv").glob(marker))


def test_symlink_and_proc_root_tricks_stay_inside(runner, data_dir):
    result = run_code(
        runner,
        """
        import errno
        import os

        def look(path):
            try:
                with open(path, "rb") as f:
                    return "read:" + f.read(32).hex()
            except OSError as exc:
                return errno.errorcode.get(exc.errno, str(exc.errno))

        def still_open(names):
            # the listing's own fd is closed by now, so readlink fails for it
            fds = {}
            for name in names:
                try:
                    fds[name] = os.readlink("/proc/self/fd/" + name)
                except OSError:
                    pass
            return fds

        def attack(inputs, params, blobs):
            key = params["key"]
            os.symlink(key, "/tmp/key-link")
            os.symlink("/proc/self/root/../../../../" + key.lstrip("/"), "/tmp/dotdot-link")
            os.symlink("/proc/1/cwd/../../../etc/shadow", "/tmp/shadow-link")
            try:
                os.link("/usr/bin/env", "/tmp/hardlink")
                hard = "linked"
            except OSError as exc:
                hard = errno.errorcode.get(exc.errno)
            return {"values": {
                "key_link": look("/tmp/key-link"),
                "dotdot_link": look("/tmp/dotdot-link"),
                "shadow_link": look("/tmp/shadow-link"),
                "proc_root_key": look("/proc/self/root" + key),
                "proc_1_root_key": look("/proc/1/root" + key),
                "proc_root_listing": sorted(os.listdir("/proc/self/root")),
                "root_listing": sorted(os.listdir("/")),
                "hardlink": hard,
                "fds": still_open(os.listdir("/proc/self/fd")),
                "settings": __import__("sys").argv[1],
            }}
        """,
        params={"key": str(data_dir / "master.key")},
    )
    assert result.ok, result.error
    seen = result.values
    for name in ("key_link", "dotdot_link", "shadow_link", "proc_root_key", "proc_1_root_key"):
        assert seen[name] == "ENOENT", (name, seen[name])
    assert seen["proc_root_listing"] == seen["root_listing"]  # /proc/self/root is the jail's root
    assert seen["hardlink"] in {"EXDEV", "EPERM", "EACCES", "EROFS"}
    # Only stdio, the two protocol pipes and the listing's own fd: nothing else was inherited.
    settings = __import__("json").loads(seen["settings"])
    assert {int(fd) for fd in seen["fds"]} == {0, 1, 2, settings["in"], settings["out"]}
    assert all(target.startswith(("pipe:", "/dev/null")) for target in seen["fds"].values())
    host_is_fine(runner)


def test_jails_cannot_see_each_other(runner):
    """Two jails at once: neither sees the other's processes or its /tmp."""
    marker = f"other-jail-{secrets.token_hex(6)}"
    first: dict = {}

    def occupy() -> None:
        first["result"] = run_code(
            runner,
            """
            import os, time

            def attack(inputs, params, blobs):
                with open("/tmp/" + params["marker"], "w") as f:
                    f.write("mine")
                written = time.monotonic()  # CLOCK_MONOTONIC: one clock for host and jails
                tmp = os.listdir("/tmp")
                time.sleep(4)
                return {"values": {
                    "pids": sorted(p for p in os.listdir("/proc") if p.isdigit()),
                    "tmp": tmp,
                    "written": written,
                    "ended": time.monotonic(),  # its /tmp, marker and all, still exists here
                }}
            """,
            params={"marker": marker},
        )

    def marker_written() -> bool:
        """Seen from the host (as root) through the root of one of our jail processes."""
        for pid in jail_processes():
            try:
                os.stat(f"/proc/{pid}/root/tmp/{marker}")
                return True
            except OSError:  # not that process's /tmp (bwrap's), not yet, or the pid is gone
                continue
        return False

    thread = threading.Thread(target=occupy)
    thread.start()
    deadline = time.monotonic() + 30  # start the second jail once the first wrote its marker
    while not marker_written():
        assert time.monotonic() < deadline, "the first jail never wrote its marker"
        time.sleep(0.05)
    second = run_code(
        runner,
        """
        import os, time

        def attack(inputs, params, blobs):
            before = time.monotonic()
            tmp = os.listdir("/tmp")
            return {"values": {
                "pids": sorted(p for p in os.listdir("/proc") if p.isdigit()),
                "tmp": tmp,
                "listed": [before, time.monotonic()],
            }}
        """,
    )
    thread.join()
    assert second.ok, second.error
    assert first["result"].ok, first["result"].error
    mine, theirs = first["result"].values, second.values
    assert marker in mine["tmp"]  # the first jail's own /tmp holds its marker
    # The second jail listed its /tmp while the first one's marker existed: they overlapped.
    assert mine["written"] < theirs["listed"][0] <= theirs["listed"][1] < mine["ended"]
    assert marker not in theirs["tmp"]
    # Empty but for the mount points of a runtime that lives under /tmp (a CI checkout).
    runtime_dirs = {p.parts[2] for p in map(Path, sys.path) if p.parts[:2] == ("/", "tmp")}
    assert set(theirs["tmp"]) <= runtime_dirs
    assert theirs["pids"] == ["1"]  # only itself: its own pid namespace
    assert mine["pids"] == ["1"]


def test_limits_cannot_be_raised_from_inside(runner):
    result = run_code(
        runner,
        """
        import resource

        def attack(inputs, params, blobs):
            out = {}
            for name in ("RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_NPROC", "RLIMIT_FSIZE",
                         "RLIMIT_NOFILE", "RLIMIT_CORE"):
                which = getattr(resource, name)
                soft, hard = resource.getrlimit(which)
                try:
                    resource.setrlimit(which, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
                    raised = True
                except (ValueError, OSError):
                    raised = False
                out[name] = [soft, hard, raised]
            return {"values": out}
        """,
    )
    assert result.ok, result.error
    seen = result.values
    assert all(raised is False for _, _, raised in seen.values()), seen
    assert seen["RLIMIT_CORE"][:2] == [0, 0]
    assert seen["RLIMIT_NPROC"][:2] == [TEST_LIMITS.max_processes] * 2
    assert seen["RLIMIT_AS"][:2] == [TEST_LIMITS.memory_bytes] * 2
