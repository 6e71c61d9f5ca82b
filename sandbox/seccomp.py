"""The jail's seccomp filter, written as classic BPF and handed to bubblewrap with `--seccomp FD`.

A deny-list over a reviewed syscall table, plus argument checks; x86_64 only, else fail closed.
"""

from __future__ import annotations

import errno
import functools
import platform
import struct

from sandbox.errors import JailUnavailable

# struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6].
NR_OFFSET = 0
ARCH_OFFSET = 4


def arg_low_word(index: int) -> int:
    """Offset of the low 32 bits of syscall argument `index` (little-endian x86_64)."""
    return 16 + 8 * index


AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000

# Classic BPF opcodes (linux/bpf_common.h).
LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K
RET_K = 0x06  # BPF_RET | BPF_K

RET_KILL_PROCESS = 0x80000000
RET_ALLOW = 0x7FFF0000


def ret_errno(code: int) -> int:
    return 0x00050000 | code


# Every syscall at or above this number is newer than the table below was reviewed against
# (Linux 6.6's x86_64 table ends at 450): ENOSYS, so libc falls back and a kernel upgrade cannot
# silently widen the jail.
FIRST_UNREVIEWED_SYSCALL = 451

# x86_64 numbers (arch/x86/entry/syscalls/syscall_64.tbl). Each answers EPERM.
DENIED_SYSCALLS: dict[str, int] = {
    "ptrace": 101,  # reading or steering another process
    "process_vm_readv": 310,  # reading another process's memory
    "process_vm_writev": 311,  # writing another process's memory
    "kcmp": 312,  # probing other processes' kernel objects
    "pidfd_getfd": 438,  # stealing a file descriptor from another process
    "process_madvise": 440,  # acting on another process's memory
    "mount": 165,  # reshaping the filesystem view bubblewrap built
    "umount2": 166,  # uncovering what a mount hides
    "pivot_root": 155,  # changing the root
    "chroot": 161,  # changing the root (the classic chroot escape needs it)
    "open_tree": 428,  # the new mount API, same reasons as mount
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "mount_setattr": 442,
    "unshare": 272,  # new namespaces: kernel attack surface a data job never needs
    "setns": 308,  # joining another namespace
    "keyctl": 250,  # kernel keyrings are not namespaced: another tenant's keys
    "add_key": 248,
    "request_key": 249,
    "bpf": 321,  # eBPF programs: a large kernel attack surface
    "perf_event_open": 298,  # side channels and a long history of kernel bugs
    "userfaultfd": 323,  # a staple of kernel exploit races
    "io_uring_setup": 425,  # io_uring bypasses seccomp for the operations it carries
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "kexec_load": 246,  # loading a new kernel
    "kexec_file_load": 320,
    "init_module": 175,  # loading kernel modules
    "finit_module": 313,
    "delete_module": 176,
    "create_module": 174,
    "get_kernel_syms": 177,
    "query_module": 178,
    "personality": 135,  # READ_IMPLIES_EXEC and ASLR switches
    "modify_ldt": 154,  # 16-bit segments: old exploit primitive
    "uselib": 134,  # obsolete loader path
    "syslog": 103,  # reading the kernel log (addresses)
    "lookup_dcookie": 212,
    "fanotify_init": 300,  # watching the filesystem
    "open_by_handle_at": 304,  # the "shocker" escape: opening files by handle past mounts
    "name_to_handle_at": 303,
    "acct": 163,
    "quotactl": 179,
    "quotactl_fd": 443,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "sethostname": 170,
    "setdomainname": 171,
    "iopl": 172,  # raw I/O port access
    "ioperm": 173,
    "vhangup": 153,
    "settimeofday": 164,  # the clock is shared with the host
    "clock_settime": 227,
    "clock_adjtime": 305,
    "adjtimex": 159,
    "_sysctl": 156,
    "nfsservctl": 180,
    "migrate_pages": 256,  # moving another process's pages
    "move_pages": 279,
}

SOCKET = 41
SOCKETPAIR = 53
CLONE = 56
CLONE3 = 435
IOCTL = 16
AF_UNIX = 1
TIOCSTI = 0x5412  # pushes bytes into a terminal's input queue (CVE-2017-5226)
TIOCLINUX = 0x541C  # console selection paste: the same injection on a virtual console
# CLONE_NEWTIME | CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
# CLONE_NEWPID | CLONE_NEWNET: clone() that would create namespaces (fork and threads pass).
CLONE_NAMESPACE_FLAGS = 0x00000080 | 0x00020000 | 0x7E000000


def instruction(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    """One `struct sock_filter` {u16 code; u8 jt; u8 jf; u32 k} in native byte order."""
    return struct.pack("=HBBI", code, jt, jf, k)


def filter_program() -> list[bytes]:
    """The filter as a list of instructions; every branch ends in a return."""
    program = [
        instruction(LD_W_ABS, ARCH_OFFSET),
        # Any ABI but native x86_64 (i386 via int 0x80 is AUDIT_ARCH_I386): kill the process,
        # because a foreign ABI has its own syscall numbers that the checks below do not know.
        instruction(JEQ_K, AUDIT_ARCH_X86_64, jt=1, jf=0),
        instruction(RET_K, RET_KILL_PROCESS),
        instruction(LD_W_ABS, NR_OFFSET),
        # x32 ABI: the same syscalls with bit 30 set would slip past every number below.
        instruction(JGE_K, X32_SYSCALL_BIT, jt=0, jf=1),
        instruction(RET_K, ret_errno(errno.EPERM)),
        instruction(JGE_K, FIRST_UNREVIEWED_SYSCALL, jt=0, jf=1),
        instruction(RET_K, ret_errno(errno.ENOSYS)),
        # clone3 passes its flags in memory that BPF cannot read: ENOSYS makes libc use clone.
        instruction(JEQ_K, CLONE3, jt=0, jf=1),
        instruction(RET_K, ret_errno(errno.ENOSYS)),
    ]
    for number in (SOCKET, SOCKETPAIR):
        # Only AF_UNIX: the family is an int, so the kernel ignores the high word we skip too.
        program += [
            instruction(JEQ_K, number, jt=0, jf=4),
            instruction(LD_W_ABS, arg_low_word(0)),
            instruction(JEQ_K, AF_UNIX, jt=0, jf=1),
            instruction(RET_K, RET_ALLOW),
            instruction(RET_K, ret_errno(errno.EAFNOSUPPORT)),
        ]
    program += [
        # clone with namespace flags (the flags word's low half holds all of them).
        instruction(JEQ_K, CLONE, jt=0, jf=4),
        instruction(LD_W_ABS, arg_low_word(0)),
        instruction(JSET_K, CLONE_NAMESPACE_FLAGS, jt=0, jf=1),
        instruction(RET_K, ret_errno(errno.EPERM)),
        instruction(RET_K, RET_ALLOW),
        # ioctl TIOCSTI/TIOCLINUX; the request is an unsigned int, so compare the low word only
        # (comparing 64 bits is the CVE-2019-10063 bypass).
        instruction(JEQ_K, IOCTL, jt=0, jf=5),
        instruction(LD_W_ABS, arg_low_word(1)),
        instruction(JEQ_K, TIOCSTI, jt=2, jf=0),
        instruction(JEQ_K, TIOCLINUX, jt=1, jf=0),
        instruction(RET_K, RET_ALLOW),
        instruction(RET_K, ret_errno(errno.EPERM)),
    ]
    for number in sorted(set(DENIED_SYSCALLS.values())):
        program += [
            instruction(JEQ_K, number, jt=0, jf=1),
            instruction(RET_K, ret_errno(errno.EPERM)),
        ]
    program.append(instruction(RET_K, RET_ALLOW))
    return program


@functools.cache
def jail_filter() -> bytes:
    """The compiled filter for this host, or JailUnavailable where it has not been written."""
    machine = platform.machine()
    if machine != "x86_64":
        # The numbers above are x86_64's; on another architecture they would filter the wrong
        # syscalls, so refuse to build a jail rather than build a leaky one.
        raise JailUnavailable(f"no seccomp filter for architecture {machine}; jails refused")
    program = filter_program()
    if len(program) > 4096:  # BPF_MAXINSNS
        raise JailUnavailable("seccomp filter too long")
    return b"".join(program)
