"""Where the master key comes from, the room's signing seed, and master-key rotation.

The master key is `SAFEROOM_MASTER_KEY` or a 0600 key file in the data dir made at init.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from saferoom.crypto import MasterKey, new_key
from saferoom.dataset_store import wrap_context
from saferoom.errors import ConfigurationError
from saferoom.job_store import job_logs_context
from saferoom.model_store import model_key_context
from saferoom.state import StateStore

KEY_FILE = "master.key"
_SIGNING_SEED = "signing_seed"
_MASTER_ID = "master_key_id"


def write_key_file(path: Path, key: bytes) -> None:
    """Create the file 0600 from the first byte (never briefly world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_key_file(path: Path) -> MasterKey:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(f"{path.name} must be readable by its owner only (chmod 600)")
    try:
        return MasterKey(bytes.fromhex(path.read_text().strip()))
    except ValueError:
        raise ConfigurationError(f"{path.name} does not hold a 32-byte hex key") from None


def load_master_key(data_dir: Path, from_env: bytes | None, state: StateStore) -> MasterKey:
    """The master key for this data dir; a new one only for a data dir that has none yet."""
    known_id = state.get_meta(_MASTER_ID)
    path = data_dir / KEY_FILE
    if from_env is not None:
        master = MasterKey(from_env)
    elif path.exists():
        master = read_key_file(path)
        pending = data_dir / (KEY_FILE + ".new")
        if known_id is not None and master.id != known_id.decode() and pending.exists():
            # A rotation committed its re-wrapping but stopped before swapping the files.
            os.replace(pending, path)
            master = read_key_file(path)
    elif known_id is None:
        write_key_file(path, new_key())
        master = read_key_file(path)
    else:
        raise ConfigurationError(
            "this data dir is encrypted under a master key that was not given: "
            "set SAFEROOM_MASTER_KEY or restore master.key"
        )
    if known_id is None:
        state.set_meta(_MASTER_ID, master.id.encode())
    elif known_id.decode() != master.id:
        raise ConfigurationError("the master key given does not match this data dir")
    return master


def signing_seed(state: StateStore, master: MasterKey, make_seed: bytes) -> bytes:
    """The room's Ed25519 seed, kept wrapped by the master key; `make_seed` is used if none."""
    wrapped = state.get_meta(_SIGNING_SEED)
    if wrapped is None:
        state.set_meta(_SIGNING_SEED, master.wrap(make_seed, _SIGNING_SEED))
        return make_seed
    return master.unwrap(wrapped, _SIGNING_SEED)


def rotate_key_file(data_dir: Path, state: StateStore, old: MasterKey) -> int:
    """Rotation for a key-file data dir: new key file first, re-wrap, then swap the files."""
    pending = data_dir / (KEY_FILE + ".new")
    pending.unlink(missing_ok=True)
    write_key_file(pending, new_key())
    count = rotate_master_key(state, old, read_key_file(pending))
    os.replace(pending, data_dir / KEY_FILE)
    return count


def rotate_master_key(state: StateStore, old: MasterKey, new: MasterKey) -> int:
    """Re-wrap every data key and the signing seed under `new` in one transaction.

    Data is not re-encrypted: data keys do not change, only their wrapping. Returns how many
    dataset keys were re-wrapped.
    """
    keys = state.wrapped_keys()
    seed = state.get_meta(_SIGNING_SEED)
    rewrapped = [
        (new.wrap(old.unwrap(w, wrap_context(i)), wrap_context(i)), i) for i, w in keys
    ]
    # Everything else the master key wraps: model artifact keys and sealed job logs.
    others: dict[str, tuple[str, Callable[[str], str]]] = {
        "models": ("data_key", model_key_context),
        "jobs": ("logs", job_logs_context),
    }
    extra: list[tuple[str, list[tuple[bytes, str]]]] = []
    for table, (column, context) in others.items():
        if not state.query("SELECT 1 FROM information_schema.tables WHERE table_name = ?",
                           [table]):
            continue
        rows = state.query(f"SELECT id, {column} FROM {table} "  # noqa: S608 (constants)
                           f"WHERE {column} IS NOT NULL")
        extra.append((f"UPDATE {table} SET {column} = ? WHERE id = ?", [  # noqa: S608
            (new.wrap(old.unwrap(bytes(w), context(i)), context(i)), i)
            for i, w in rows]))
    with state.transaction() as con:
        con.executemany("UPDATE datasets SET data_key = ? WHERE id = ?", rewrapped)
        for sql, values in extra:
            if values:
                con.executemany(sql, values)
        if seed is not None:
            con.execute(
                "UPDATE meta SET value = ? WHERE key = ?",
                [new.wrap(old.unwrap(seed, _SIGNING_SEED), _SIGNING_SEED), _SIGNING_SEED],
            )
        con.execute("UPDATE meta SET value = ? WHERE key = ?", [new.id.encode(), _MASTER_ID])
    return len(rewrapped)
