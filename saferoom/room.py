"""The room: one data directory opened as state, keys, encrypted datasets and the audit log.

Built once at start (CLI, server, demo, tests) and closed at shutdown with a final checkpoint.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from audit.checkpoint import Ed25519Signer
from audit.log import AuditLog
from saferoom.agreement_store import AgreementStore
from saferoom.auth import Authenticator, Principal
from saferoom.consent_store import ConsentStore
from saferoom.crypto import MasterKey
from saferoom.dataset_store import DatasetStore
from saferoom.keyring import load_master_key, signing_seed
from saferoom.objection_store import ObjectionStore
from saferoom.recorder import Call
from saferoom.settings import Settings
from saferoom.state import StateStore

STATE_FILE = "state.duckdb"


@dataclass
class Room:
    settings: Settings
    state: StateStore
    master: MasterKey
    datasets: DatasetStore
    audit: AuditLog
    signer: Ed25519Signer
    digest_key: bytes = field(repr=False)
    auth: Authenticator
    agreements: AgreementStore
    consents: ConsentStore
    objections: ObjectionStore

    @classmethod
    def open(cls, settings: Settings) -> Room:
        data_dir: Path = settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        state = StateStore(data_dir / STATE_FILE)
        try:
            master = load_master_key(data_dir, settings.master_key, state)
            seed = signing_seed(state, master, Ed25519Signer.generate_seed())
            signer = Ed25519Signer(seed)
            # Keys the digests in audit events; from the signing seed, so it outlives rotations.
            digest_key = hashlib.sha256(b"saferoom-audit-digest\x00" + seed).digest()
            audit = AuditLog(data_dir / "audit", signer, settings.checkpoint_every)
        except BaseException:
            state.close()
            raise
        return cls(
            settings=settings,
            state=state,
            master=master,
            datasets=DatasetStore(data_dir / "datasets", state, master),
            audit=audit,
            signer=signer,
            digest_key=digest_key,
            auth=Authenticator(state, settings.admin_token),
            agreements=AgreementStore(state),
            consents=ConsentStore(state),
            objections=ObjectionStore(state, master),
        )

    def call(self, operation: str, principal: Principal | None = None) -> Call:
        """A call to audit: the one way the service records what it decided and released."""
        return Call(self.audit, operation, principal, self.digest_key)

    def close(self) -> None:
        self.audit.close()
        self.state.close()
