"""The bubblewrap command line for one jail; every hardening flag says why it is there.

As root, a staging step first makes the bind sources reachable, then drops to an unprivileged uid.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from sandbox.config import BOOTSTRAP_DIR, JailConfig, unique_roots
from sandbox.limits import JailLimits

JAIL_BOOT = "/jail/boot"  # holds the bootstrap package, read-only
JAIL_PACKAGE = "saferoom_jail"  # the name sandbox/inside has inside a jail
JAIL_LIB = "/jail/lib"  # import roots, read-only, each under its package name
JAIL_TMP = "/tmp"  # noqa: S108 - inside a jail: its own private tmpfs, never the host's /tmp
HOSTNAME = "saferoom-jail"
# Merged-/usr distributions make these symlinks; older ones have real directories.
SYSTEM_TOP_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
BOOT_CODE = (
    f"import sys; sys.path.insert(0, {JAIL_BOOT!r}); "
    f"from {JAIL_PACKAGE}.bootstrap import main; main()"
)
JAIL_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": JAIL_TMP,
    "TMPDIR": JAIL_TMP,
    "LANG": "C.UTF-8",
    "JOBLIB_MULTIPROCESSING": "0",  # no /dev/shm in a jail: serial joblib, without a warning
    # OpenMP, OpenBLAS and Arrow size their thread pools from this, not from the host's cores:
    # threads count against RLIMIT_NPROC, so a big host must not make a job hit the limit; and
    # no more threads than cores, since oversubscribed OpenMP runs slower (1.2-2.7x measured).
    "OMP_NUM_THREADS": str(max(1, min(4, len(os.sched_getaffinity(0))))),
}


def system_binds() -> list[str]:
    """/usr read-only, and /bin, /lib... as the host has them (symlinks into /usr or dirs)."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in SYSTEM_TOP_DIRS:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", str(path.readlink()), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


def bind_plan(config: JailConfig) -> dict[str, str]:
    """Jail path -> host path of every directory the job can see besides /usr."""
    plan = {str(root): str(root) for root in unique_roots(config.runtime.roots)}
    plan[f"{JAIL_BOOT}/{JAIL_PACKAGE}"] = str(BOOTSTRAP_DIR)
    for root in config.import_roots:
        plan[f"{JAIL_LIB}/{root.name}"] = str(root.resolve())
    return plan


STAGE_SCRIPT = """
set -eu
stage=$1
shift
mount -t tmpfs -o mode=0755,size=1m,nosuid,nodev saferoom-stage "$stage"
i=0
while [ "$1" != -- ]; do
    mkdir "$stage/$i"
    mount --rbind "$1" "$stage/$i"
    i=$((i + 1))
    shift
done
shift
exec "$@"
"""


@functools.cache
def stage_mountpoint() -> Path:
    """An empty host directory, only ever mounted over inside private mount namespaces.

    One per service uid, reused across runs (a killed service leaves nothing new behind); if the
    name is taken by anything but our own private directory, a fresh one is made instead.
    """
    path = Path(tempfile.gettempdir()) / f"saferoom-stage-{os.geteuid()}"
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = path.lstat()
    ours = stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid()
    if not ours or info.st_mode & 0o077:
        return Path(tempfile.mkdtemp(prefix="saferoom-stage-"))
    return path


def staging_args(config: JailConfig, plan: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """The privileged staging step, and where each bind source appears after it.

    Jails run as an unprivileged host uid, which may not traverse to the sources (a Python under
    /root, a 0700 temp dir). As root, in a private mount namespace of its own, the launcher binds
    them into a fresh tmpfs that uid can reach, then setpriv drops every privilege and execs the
    jail's bwrap. Each step execs the next in the same process, so bwrap stays the service's
    direct child (its --die-with-parent watches the service) and nothing untrusted runs here.
    """
    stage = str(stage_mountpoint())
    ordered = sorted(plan.items())
    staged = {dest: f"{stage}/{index}" for index, (dest, _) in enumerate(ordered)}
    args = [
        str(config.unshare),
        "--mount",  # a private mount namespace: the host's mount table never changes
        "--propagation", "private",  # and no mount event propagates back to the host
        "--",
        "/bin/sh", "-c", STAGE_SCRIPT, "saferoom-stage", stage,
        *[source for _, source in ordered],
        "--",
        str(config.setpriv),
        f"--reuid={config.jail_uid}",  # an unprivileged host uid: RLIMIT_NPROC binds it, root not
        f"--regid={config.jail_gid}",
        "--clear-groups",  # no supplementary groups (root's groups could open files)
        "--inh-caps=-all",  # no inheritable, ambient or bounding capabilities left
        "--bounding-set=-all",
        "--",
    ]
    return args, staged


def jail_args(
    config: JailConfig,
    limits: JailLimits,
    sources: Mapping[str, str],
    seccomp_fd: int,
) -> list[str]:
    """The unprivileged bwrap that builds the jail itself."""
    args = [
        str(config.bwrap),
        "--unshare-user",  # own user namespace: "root" inside is an unprivileged uid outside
        "--disable-userns",  # and no nested user namespaces (their kernel surface) from inside
        "--unshare-pid",  # sees only its own processes; when its init dies, every process dies
        "--as-pid-1",  # Python is that init: the kernel kills the rest when it exits, and its
        # CPU time reaches the service through wait4 (bwrap's own init would not pass it up)
        "--unshare-net",  # own network namespace: only a private loopback, no route to anything
        "--unshare-ipc",  # no SysV shared memory, semaphores or message queues of the host
        "--unshare-uts",  # own hostname
        "--hostname", HOSTNAME,
        "--unshare-cgroup",  # the host's cgroup layout stays hidden
        "--die-with-parent",  # PR_SET_PDEATHSIG: the jail dies with its launcher
        "--new-session",  # setsid: no controlling tty, so no TIOCSTI typing into ours
        "--cap-drop", "ALL",  # no capabilities, not even inside its own namespace
        "--clearenv",  # no service variable (SAFEROOM_*, tokens, paths) reaches the job
    ]
    for key, value in JAIL_ENV.items():
        args += ["--setenv", key, value]
    args += system_binds()  # system libraries, read-only
    args += [
        "--proc", "/proc",  # procfs of the new pid namespace: no host process is listed
        "--dev", "/dev",  # a minimal /dev: null, zero, full, random, urandom, tty
        "--size", str(limits.tmpfs_bytes),  # the private /tmp is a size-capped tmpfs: ENOSPC
        "--perms", "0700",
        "--tmpfs", JAIL_TMP,  # the only writable place, private to this jail, gone at exit
    ]
    # After the tmpfs, so that a runtime living under /tmp (a CI checkout) lands on top of it
    # rather than being hidden by it.
    for dest, source in sorted(sources.items()):
        args += ["--ro-bind", source, dest]  # runtime, bootstrap and import roots, read-only
    args += [
        "--remount-ro", "/dev",  # no writable /dev/shm: the tmpfs cap would not cover it
        "--remount-ro", "/",  # the root tmpfs bwrap builds on: no writes outside /tmp
        "--chdir", JAIL_TMP,
        "--seccomp", str(seccomp_fd),  # the syscall filter (sandbox/seccomp.py), from a pipe
    ]
    return args


def jail_command(
    config: JailConfig,
    limits: JailLimits,
    *,
    seccomp_fd: int,
    in_fd: int,
    out_fd: int,
    mode: str,
    preload: tuple[str, ...] = (),
) -> list[str]:
    """Full argv: [staging bwrap + setpriv +] jail bwrap + python running the bootstrap."""
    plan = bind_plan(config)
    prefix: list[str] = []
    sources = {dest: source for dest, source in plan.items()}
    if config.drops_privileges:
        prefix, sources = staging_args(config, plan)
    settings = {
        "in": in_fd,
        "out": out_fd,
        "mode": mode,
        "lib": JAIL_LIB,
        "rlimits": limits.rlimits(),
        "preload": list(preload),
    }
    python = [
        str(config.runtime.executable),
        "-I",  # isolated: ignore PYTHON* variables, no user site-packages, no cwd on sys.path
        "-B",  # no .pyc writes (all of it is read-only anyway)
        "-c",
        BOOT_CODE,
        json.dumps(settings),
    ]
    return [*prefix, *jail_args(config, limits, sources, seccomp_fd), "--", *python]
