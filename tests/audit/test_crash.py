"""Durability: a writer killed with SIGKILL loses nothing it acknowledged, and the log verifies.

The writer is a real child process; acknowledged means "printed after append returned".
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from audit.log import AuditLog
from audit.verify import verify_log

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"

WRITER = """
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from audit import AuditLog, Ed25519Signer, EventDraft

log = AuditLog(Path(sys.argv[2]), Ed25519Signer(bytes(32)), checkpoint_every=7)
i = 0
while True:
    i += 1
    # Mostly single events, sometimes a large batch so the kill can land mid-write.
    size = 1000 if i % 10 == 0 else 1 + i % 3
    drafts = [EventDraft(actor="bank-1", role="bank", action="query", resource="dataset:tax",
                         subjects=(f"S{i}",), epsilon=0.5) for _ in range(size)]
    events = log.append(drafts)
    print(events[-1].seq, flush=True)
"""


def run_and_kill(directory: Path, acks: int) -> list[int]:
    """Start the writer, SIGKILL it after `acks` acknowledgements; return every acked seq."""
    child = subprocess.Popen(
        [str(PYTHON), "-c", WRITER, str(REPO), str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    acked: list[int] = []
    deadline = time.monotonic() + 60
    while len(acked) < acks and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        acked.append(int(line))
    os.kill(child.pid, signal.SIGKILL)
    rest, errors = child.communicate(timeout=30)
    # Lines already in the pipe were printed after their append returned: acknowledged too.
    acked += [int(line) for line in rest.split()]
    assert child.returncode == -signal.SIGKILL, errors
    assert len(acked) >= acks, errors
    return acked


def test_sigkill_loses_no_acknowledged_event(tmp_path):
    for round_ in range(3):
        acked = run_and_kill(tmp_path, acks=40 + 20 * round_)
        report = verify_log(tmp_path)
        assert report.ok, report.message
        assert report.events >= max(acked)
        with AuditLog(tmp_path) as log:
            assert log.size >= max(acked)
            for seq in acked:
                assert log.get(seq).seq == seq
            # Reopening made the log appendable again; the next round continues the chain.
            assert [e.subjects for e in log.events(after_seq=max(acked) - 1, limit=1)]
