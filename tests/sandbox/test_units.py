"""The jail's parts without a jail: limits, jobs, the seccomp program (run in a BPF interpreter),
the bwrap command line, strict Arrow decoding, and the in-process stub.
"""

from __future__ import annotations

import errno
import math
import struct
from pathlib import Path

import pyarrow as pa
import pytest

from sandbox import (
    JOB_LIMITS,
    InvalidJob,
    JailConfig,
    JailJob,
    JailResult,
    JailUnavailable,
    OutputRejected,
    PythonRuntime,
    StubRunner,
    seccomp,
)
from sandbox.arrow_check import decode_table
from sandbox.command import jail_command
from sandbox.inside import wire
from sandbox.request import frame_header
from tests.sandbox.conftest import REPO

# --- limits and jobs ---------------------------------------------------------------------------


def test_every_job_kind_has_safe_defaults():
    assert set(JOB_LIMITS) >= {"train", "score", "dry_run"}
    for limits in JOB_LIMITS.values():
        assert limits.rlimits()["RLIMIT_CORE"] == 0
        assert limits.max_processes <= 256
        assert limits.wall_seconds <= 3600


@pytest.mark.parametrize(
    "change",
    [{"cpu_seconds": 0}, {"memory_bytes": -1}, {"max_processes": True}, {"wall_seconds": math.nan},
     {"wall_seconds": math.inf}, {"tmpfs_bytes": 1.5}, {"output_bytes": "1"}],
)
def test_limits_refuse_nonsense(change):
    with pytest.raises(ValueError):
        JOB_LIMITS["score"].with_changes(**change)


def test_limits_are_frozen():
    with pytest.raises(AttributeError):
        JOB_LIMITS["score"].cpu_seconds = 10**9  # type: ignore[misc]


@pytest.mark.parametrize("entry", ["models", "models.entry", "models.entry:", ":train",
                                   "models.entry:train()", "os.system; rm:x", "a..b:c"])
def test_entry_must_be_module_colon_function(entry):
    with pytest.raises(InvalidJob):
        JailJob(entry=entry)


def test_job_inputs_are_named_tables_and_blobs_bytes():
    with pytest.raises(InvalidJob):
        JailJob(entry="m:f", inputs={"../x": pa.table({"a": [1]})})
    with pytest.raises(InvalidJob):
        JailJob(entry="m:f", inputs={"x": [1, 2]})  # type: ignore[dict-item]
    with pytest.raises(InvalidJob):
        JailJob(entry="m:f", blobs={"b": "text"})  # type: ignore[dict-item]
    assert JailJob(entry="models.entry:train").limits == JOB_LIMITS["dry_run"]


def test_parameters_must_be_strict_json():
    with pytest.raises(InvalidJob):
        frame_header({"params": {"x": math.nan}})
    with pytest.raises(InvalidJob):
        frame_header({"params": {"x": object()}})


def test_result_ok_only_for_status_ok():
    assert JailResult(status="ok").ok
    assert not JailResult(status="limit", limit="cpu").ok


# --- the seccomp program, run by a classic BPF interpreter --------------------------------------

AUDIT_ARCH_I386 = 0x40000003
AUDIT_ARCH_AARCH64 = 0xC00000B7


def evaluate(program: bytes, nr: int, arch: int = seccomp.AUDIT_ARCH_X86_64,
             args: tuple[int, ...] = ()) -> int:
    """What the kernel would return for this syscall (supports the opcodes the filter uses)."""
    padded = (list(args) + [0] * 6)[:6]
    data = struct.pack("<iIQ6Q", nr, arch, 0, *padded)
    insns = [struct.unpack_from("=HBBI", program, i) for i in range(0, len(program), 8)]
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == seccomp.LD_W_ABS:
            (acc,) = struct.unpack_from("<I", data, k)
            pc += 1
        elif code in (seccomp.JEQ_K, seccomp.JGE_K, seccomp.JSET_K):
            taken = {seccomp.JEQ_K: acc == k, seccomp.JGE_K: acc >= k,
                     seccomp.JSET_K: bool(acc & k)}[code]
            pc += 1 + (jt if taken else jf)
        elif code == seccomp.RET_K:
            return k
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


PROGRAM = b"".join(seccomp.filter_program())
ALLOW = seccomp.RET_ALLOW
EPERM = seccomp.ret_errno(errno.EPERM)


def test_filter_is_well_formed():
    assert len(PROGRAM) % 8 == 0
    assert len(PROGRAM) // 8 <= 4096
    assert struct.unpack_from("=HBBI", PROGRAM, 0) == (seccomp.LD_W_ABS, 0, 0, seccomp.ARCH_OFFSET)


@pytest.mark.parametrize("arch", [AUDIT_ARCH_I386, AUDIT_ARCH_AARCH64, 0])
def test_foreign_abi_kills_the_process(arch):
    assert evaluate(PROGRAM, 41, arch=arch, args=(1,)) == seccomp.RET_KILL_PROCESS
    assert evaluate(PROGRAM, 0, arch=arch) == seccomp.RET_KILL_PROCESS


@pytest.mark.parametrize("nr", [0, 39, 41, 101, 165, 272])
def test_x32_numbers_are_refused(nr):
    assert evaluate(PROGRAM, seccomp.X32_SYSCALL_BIT | nr, args=(1,)) == EPERM


@pytest.mark.parametrize("name", sorted(seccomp.DENIED_SYSCALLS))
def test_each_denied_syscall_gets_eperm(name):
    assert evaluate(PROGRAM, seccomp.DENIED_SYSCALLS[name]) == EPERM


@pytest.mark.parametrize("nr", [0, 1, 3, 9, 39, 57, 59, 61, 202, 231, 257, 262, 318, 334, 439])
def test_ordinary_syscalls_pass(nr):
    assert evaluate(PROGRAM, nr) == ALLOW


def test_sockets_are_unix_only_whatever_the_high_word():
    afno = seccomp.ret_errno(errno.EAFNOSUPPORT)
    for nr in (seccomp.SOCKET, seccomp.SOCKETPAIR):
        assert evaluate(PROGRAM, nr, args=(1, 1)) == ALLOW
        assert evaluate(PROGRAM, nr, args=(2, 1)) == afno
        assert evaluate(PROGRAM, nr, args=(10, 2)) == afno
        assert evaluate(PROGRAM, nr, args=(16, 3)) == afno
        assert evaluate(PROGRAM, nr, args=((1 << 32) | 2, 1)) == afno


def test_clone_with_namespace_flags_is_refused_plain_fork_and_threads_pass():
    thread_flags = 0x3D0F00  # CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT/CHILD_TID
    assert evaluate(PROGRAM, seccomp.CLONE, args=(thread_flags,)) == ALLOW
    assert evaluate(PROGRAM, seccomp.CLONE, args=(17,)) == ALLOW  # fork: SIGCHLD only
    for flag in (0x10000000, 0x20000000, 0x40000000, 0x00020000, 0x04000000, 0x08000000,
                 0x02000000, 0x00000080):
        assert evaluate(PROGRAM, seccomp.CLONE, args=(flag | 17,)) == EPERM
    assert evaluate(PROGRAM, seccomp.CLONE3) == seccomp.ret_errno(errno.ENOSYS)


def test_terminal_injection_ioctls_are_refused_even_with_high_bits():
    assert evaluate(PROGRAM, seccomp.IOCTL, args=(0, seccomp.TIOCSTI)) == EPERM
    assert evaluate(PROGRAM, seccomp.IOCTL, args=(0, (1 << 32) | seccomp.TIOCSTI)) == EPERM
    assert evaluate(PROGRAM, seccomp.IOCTL, args=(0, seccomp.TIOCLINUX)) == EPERM
    assert evaluate(PROGRAM, seccomp.IOCTL, args=(0, 0x5401)) == ALLOW  # TCGETS


def test_syscalls_newer_than_the_reviewed_table_are_enosys():
    assert evaluate(PROGRAM, seccomp.FIRST_UNREVIEWED_SYSCALL) == seccomp.ret_errno(errno.ENOSYS)
    assert evaluate(PROGRAM, 1000) == seccomp.ret_errno(errno.ENOSYS)


def test_no_filter_for_other_architectures_means_no_jail(monkeypatch):
    monkeypatch.setattr(seccomp.platform, "machine", lambda: "aarch64")
    with pytest.raises(JailUnavailable):
        seccomp.jail_filter.__wrapped__()


# --- the bubblewrap command line ----------------------------------------------------------------


@pytest.fixture
def package(tmp_path: Path) -> Path:
    root = tmp_path / "bankmodels"
    root.mkdir()
    (root / "__init__.py").write_text("")
    return root


def command(package: Path) -> list[str]:
    config = JailConfig(runtime=PythonRuntime.current(), import_roots=(package,))
    return jail_command(config, JOB_LIMITS["score"], seccomp_fd=7, in_fd=8, out_fd=9,
                        mode="once")


def jail_part(argv: list[str]) -> list[str]:
    """The unprivileged bwrap's arguments (after the optional staging bwrap and setpriv)."""
    starts = [i for i, arg in enumerate(argv) if arg.endswith("bwrap")]
    return argv[starts[-1]:]


def test_every_hardening_flag_is_there(package):
    jail = jail_part(command(package))
    for flag in ["--unshare-user", "--disable-userns", "--unshare-pid", "--unshare-net",
                 "--unshare-ipc", "--unshare-uts", "--unshare-cgroup", "--die-with-parent",
                 "--new-session", "--clearenv", "--as-pid-1"]:
        assert flag in jail, flag
    assert jail[jail.index("--cap-drop") + 1] == "ALL"
    assert jail[jail.index("--seccomp") + 1] == "7"
    size = jail.index("--size")
    assert jail[size + 1] == str(JOB_LIMITS["score"].tmpfs_bytes)
    assert jail[size + 2:size + 6] == ["--perms", "0700", "--tmpfs", "/tmp"]
    python = jail[jail.index("--") + 1:]
    assert python[1:3] == ["-I", "-B"]


def test_only_runtime_bootstrap_and_import_roots_are_bound(package):
    jail = jail_part(command(package))
    assert "--bind" not in jail  # nothing writable from the host
    assert "--dev-bind" not in jail
    destinations = {jail[i + 2] for i, arg in enumerate(jail) if arg == "--ro-bind"}
    runtime = {str(root) for root in PythonRuntime.current().roots}
    system = {"/usr"} | {f"/{d}" for d in ("bin", "sbin", "lib", "lib32", "lib64", "libx32")}
    assert destinations - runtime - system == {"/jail/lib/bankmodels", "/jail/boot/saferoom_jail"}
    assert str(REPO) not in destinations  # never the repository (a data dir may live in it)
    assert "--setenv" in jail
    assert not any("SAFEROOM" in arg for arg in jail)


def test_running_as_root_stages_privately_then_drops_to_an_unprivileged_uid(package):
    if not JailConfig().drops_privileges:
        pytest.skip("only as root")
    argv = command(package)
    assert argv[:4] == ["/usr/bin/unshare", "--mount", "--propagation", "private"]
    setpriv = argv.index("/usr/bin/setpriv")
    launcher = argv[setpriv:argv.index("--", setpriv)]
    assert "--reuid=65534" in launcher
    assert "--clear-groups" in launcher
    assert "--bounding-set=-all" in launcher
    assert argv[argv.index("--", setpriv) + 1].endswith("bwrap")


def test_import_roots_must_be_distinct_packages(tmp_path, package):
    with pytest.raises(ValueError):
        JailConfig(import_roots=(tmp_path,))  # a plain directory, e.g. a repository root
    twin = tmp_path / "other" / "bankmodels"
    twin.mkdir(parents=True)
    (twin / "__init__.py").write_text("")
    with pytest.raises(ValueError):
        JailConfig(import_roots=(package, twin))


# --- strict Arrow decoding ----------------------------------------------------------------------


def test_plain_tables_decode_without_metadata():
    table = pa.table({"a": [1, 2], "s": ["x", None]}).replace_schema_metadata({"pandas": "{}"})
    decoded = decode_table(wire.ipc_bytes(table))
    assert decoded.to_pylist() == [{"a": 1, "s": "x"}, {"a": 2, "s": None}]
    assert decoded.schema.metadata is None


@pytest.mark.parametrize("compression", ["zstd", "lz4"])
def test_compressed_streams_are_refused(compression):
    table = pa.table({"a": pa.array([0] * 10_000).dictionary_encode(), "b": [1] * 10_000})
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    with pytest.raises(OutputRejected, match="compressed"):
        decode_table(sink.getvalue())


def test_extension_types_and_trailing_bytes_are_refused():
    with pytest.raises(OutputRejected, match="extension"):
        decode_table(wire.ipc_bytes(pa.table({"u": pa.array([b"0" * 16], pa.uuid())})))
    uuids = pa.ExtensionArray.from_storage(pa.uuid(), pa.array([b"0" * 16], pa.binary(16)))
    nested = pa.table({"s": pa.StructArray.from_arrays([uuids], names=["u"])})
    with pytest.raises(OutputRejected, match="extension"):
        decode_table(wire.ipc_bytes(nested))
    raw = wire.ipc_bytes(pa.table({"a": [1]})).to_pybytes()
    with pytest.raises(OutputRejected, match="after"):
        decode_table(pa.py_buffer(raw + b"\0" * 8))
    with pytest.raises(OutputRejected, match="not a valid"):
        decode_table(pa.py_buffer(raw[:-12]))


# --- the stub ----------------------------------------------------------------------------------


def test_stub_runs_registered_callables_with_the_real_checks():
    seen = {}

    def handler(inputs, params, blobs):
        seen.update(params)
        return {"tables": {"t": inputs["x"]}, "values": {"n": 1}, "blobs": {"b": b"1"}}

    stub = StubRunner({"models.entry:train": handler})
    job = JailJob(entry="models.entry:train", inputs={"x": pa.table({"a": [1]})},
                  params={"p": 2}, code="raise SystemExit('never executed')")
    result = stub.run(job)
    assert result.ok
    assert result.values == {"n": 1}
    assert stub.jobs == [job]
    assert seen == {"p": 2}
    bad = StubRunner({"m:f": lambda i, p, b: {"values": {"x": math.nan}}})
    assert bad.run(JailJob(entry="m:f")).error == "OutputRejected: values must be JSON"
    with pytest.raises(InvalidJob):
        bad.run(JailJob(entry="m:g"))
