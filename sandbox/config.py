"""Where the jail's pieces come from on the host: the Python runtime, import roots, bwrap itself.

Built once by the service; every path here is bound read-only into each jail, nothing else is.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.errors import JailUnavailable

NOBODY = 65534
BOOTSTRAP_DIR = Path(__file__).resolve().parent / "inside"


@dataclass(frozen=True)
class PythonRuntime:
    """An interpreter and the directories it needs, bound read-only at the same paths."""

    executable: Path  # run inside the jail at this path (a venv's bin/python is fine)
    roots: tuple[Path, ...]  # e.g. sys.base_prefix (stdlib) and sys.prefix (site-packages)

    @classmethod
    def current(cls) -> PythonRuntime:
        """The service's own interpreter and virtualenv: the jail runs the same versions."""
        roots = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}
        return cls(Path(sys.executable).absolute(), tuple(sorted(roots)))


def unique_roots(paths: Sequence[Path]) -> tuple[Path, ...]:
    """Paths without those already inside another (one bind covers them)."""
    ordered = sorted({p.resolve() for p in paths}, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in ordered:
        if not any(path.is_relative_to(k) for k in kept):
            kept.append(path)
    return tuple(kept)


@dataclass(frozen=True)
class JailConfig:
    """Everything needed to build a jail's command line; shared by runners and warm pools."""

    runtime: PythonRuntime = field(default_factory=PythonRuntime.current)
    import_roots: tuple[Path, ...] = ()  # package dirs, importable by their names in the jail
    bwrap: Path = Path("/usr/bin/bwrap")
    setpriv: Path = Path("/usr/bin/setpriv")  # util-linux, like unshare and mount (as root only)
    unshare: Path = Path("/usr/bin/unshare")
    jail_uid: int = NOBODY  # the host uid jails run as when the service runs as root
    jail_gid: int = NOBODY

    def __post_init__(self) -> None:
        object.__setattr__(self, "import_roots", tuple(Path(p) for p in self.import_roots))
        names: set[str] = set()
        for root in self.import_roots:
            if not (root / "__init__.py").is_file():
                # Only a package directory: never a repository or data directory by mistake.
                raise ValueError("an import root must be a package directory (with __init__.py)")
            if not root.name.isidentifier() or root.name in names:
                raise ValueError("import roots need distinct package names")
            names.add(root.name)

    @property
    def drops_privileges(self) -> bool:
        """Running as root, the jail drops to `jail_uid` (RLIMIT_NPROC does not bind root)."""
        return os.geteuid() == 0

    def check_tools(self) -> None:
        """JailUnavailable if bubblewrap (or, as root, the staging tools) cannot be executed."""
        staging = [self.setpriv, self.unshare, Path("/bin/sh"), Path("/bin/mount")]
        tools = [self.bwrap, *(staging if self.drops_privileges else [])]
        for tool in tools:
            if not (tool.is_file() and os.access(tool, os.X_OK)):
                raise JailUnavailable(f"{tool} is not an executable file; jails refused")
