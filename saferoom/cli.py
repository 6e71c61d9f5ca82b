"""The `python -m saferoom` command line: serve, init, demo, audit verify, keys rotate.

Settings come from `SAFEROOM_*` variables and these flags, built once per command.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from saferoom.errors import ConfigurationError
from saferoom.settings import Settings, load_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
audit_app = typer.Typer(no_args_is_help=True, help="The audit log, offline.")
keys_app = typer.Typer(no_args_is_help=True, help="Master key management.")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="The room's data directory.")]


def _settings(data_dir: Path | None) -> Settings:
    try:
        return load_settings(os.environ, {"data_dir": data_dir})
    except ConfigurationError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None


def _open(settings: Settings):  # type: ignore[no-untyped-def]
    from saferoom.room import Room

    try:
        return Room.open(settings)
    except ConfigurationError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Start the HTTP service on the embedded default (DuckDB, local jails)."""
    import uvicorn

    from saferoom.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    room = _open(_settings(data_dir))
    uvicorn.run(create_app(room), host=host, port=port, access_log=False, log_config=None)


@app.command()
def init(data_dir: DataDir = None) -> None:
    """Create the data directory, its keys, and the first admin token (printed once)."""
    from saferoom.api.principals import PrincipalCreate, create_principal

    room = _open(_settings(data_dir))
    try:
        if room.state.count_principals("admin") > 0:
            typer.echo("error: this data dir already has an admin; use its token, or set "
                       "SAFEROOM_ADMIN_TOKEN when serving", err=True)
            raise typer.Exit(1)
        with room.state.transaction():
            view, token = create_principal(room, PrincipalCreate(role="admin", name="admin"))
            room.call("principal.create").record(resource=view["id"], released=view)
    finally:
        room.close()
    typer.echo(f"admin token (shown once, keep it safe): {token}")


@app.command()
def demo(
    data_dir: DataDir = None,
    enterprises: Annotated[int, typer.Option(min=100, max=2_000_000)] = 100_000,
    seed: Annotated[int, typer.Option()] = 7,
) -> None:
    """The main job: load Luoyang's departments into a room and tour what each role can do."""
    from saferoom.demo import run_demo

    target = data_dir or Path("data/demo")
    settings = _settings(target)
    run_demo(settings, enterprises=enterprises, seed=seed, echo=typer.echo)


@audit_app.command("verify")
def audit_verify(
    data_dir: DataDir = None,
    witness: Annotated[Path | None, typer.Option(help="A checkpoint JSON saved earlier.")] = None,
    trusted_key: Annotated[
        list[str] | None,
        typer.Option(help="The room's public key (hex, from GET /v1/keys); repeatable."),
    ] = None,
) -> None:
    """Verify the audit log offline; exit 0 when intact, 1 naming the first bad event."""
    from audit.checkpoint import Checkpoint
    from audit.verify import verify_log

    settings = _settings(data_dir)
    cp = Checkpoint.from_json(witness.read_text()) if witness else None
    # Checkpoints re-signed by an impostor's key are caught only against keys trusted from
    # elsewhere: those given here, and the key of a witness the auditor kept.
    trusted = [*(trusted_key or []), *([cp.public_key] if cp else [])]
    report = verify_log(settings.data_dir / "audit", cp, trusted_keys=trusted)
    typer.echo(report.message)
    if not report.ok:
        raise typer.Exit(1)
    typer.echo(f"ok: {report.events} events, head {report.head}, root {report.root}")


@keys_app.command("rotate")
def keys_rotate(data_dir: DataDir = None) -> None:
    """Re-wrap every data key under a new master key (the data is not re-encrypted)."""
    from saferoom.crypto import MasterKey
    from saferoom.keyring import rotate_key_file, rotate_master_key
    from saferoom.settings import decode_master_key

    settings = _settings(data_dir)
    room = _open(settings)
    try:
        if settings.master_key is None:
            count = rotate_key_file(settings.data_dir, room.state, room.master)
            typer.echo(f"re-wrapped {count} dataset keys under a new master.key")
        else:
            new = os.environ.get("SAFEROOM_NEW_MASTER_KEY")
            if not new:
                typer.echo("error: the master key comes from SAFEROOM_MASTER_KEY; give the new "
                           "one in SAFEROOM_NEW_MASTER_KEY", err=True)
                raise typer.Exit(2)
            count = rotate_master_key(room.state, room.master, MasterKey(decode_master_key(new)))
            typer.echo(f"re-wrapped {count} dataset keys; now start with SAFEROOM_MASTER_KEY "
                       "set to the new key")
        room.call("keys.rotate").record(resource="master-key", released={"count": count})
    finally:
        room.close()
