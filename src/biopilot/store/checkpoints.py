"""Ed25519-signed checkpoints of the audit chain's head, kept in files apart from the database.

A checkpoint is one JSON line ``{"seq", "hash", "time_utc", "key_id", "signature"}`` where
``signature`` is Ed25519 (RFC 8032) over the RFC 8785 canonical JSON of ``{"hash", "seq",
"time_utc"}``. Someone who can write the database but not these files can neither cut the
chain's tail (the checkpoint names an entry that is gone) nor recompute the whole chain
(the checkpointed hash no longer matches) unseen -- 21 CFR 11.10(c) (protection of records),
EU GMP Annex 11 §7.1 (data secured against damage). Entries appended after the last
checkpoint are only as safe as the database: checkpoint often (:meth:`maybe_checkpoint`).

The folder holds ``audit-checkpoints.jsonl``, the private key ``audit-signing-key.pem``
(mode 0600) and ``audit-signing-key.pub.pem``. Keep a copy of the public key elsewhere and
pass it to :meth:`CheckpointStore.read`: a verifier that trusts the folder's own public key
trusts whoever could replace both files.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from biopilot.store.audit import AuditTrail, Checkpoint, format_time
from biopilot.store.canonical import canonical_json
from biopilot.store.timebase import to_us

__all__ = ["CheckpointStore", "default_folder", "load_public_key"]

LOG_NAME = "audit-checkpoints.jsonl"
KEY_NAME = "audit-signing-key.pem"
PUB_NAME = "audit-signing-key.pub.pem"


def default_folder(db: str | Path) -> Path:
    """Return the default checkpoint folder of an SQLite file: ``<db>.checkpoints`` beside it."""
    path = Path(str(db).removeprefix("sqlite:///"))
    return path.with_name(path.name + ".checkpoints")


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """Read an Ed25519 public key (PEM); ValueError if the file holds anything else."""
    key = serialization.load_pem_public_key(Path(path).read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


class CheckpointStore:
    """Signed checkpoints of an audit chain in ``folder`` (created on first write).

    Parameters
    ----------
    folder : str or Path
        Where the checkpoint log and the signing key live, apart from the database.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.log_path = self.folder / LOG_NAME
        self.key_path = self.folder / KEY_NAME
        self.public_key_path = self.folder / PUB_NAME

    def checkpoint(self, trail: AuditTrail) -> Checkpoint:
        """Sign the trail's current head and append it to the log; return it.

        Raises ValueError for an empty trail (there is nothing to vouch for).
        """
        seq, head = trail.head()
        if seq == 0:
            raise ValueError("the audit trail is empty: nothing to checkpoint")
        stamp = format_time(to_us(trail.clock(), "server clock"))
        key = self._private_key()
        signed = {"hash": head, "seq": seq, "time_utc": stamp}
        line = signed | {
            "key_id": _key_id(key.public_key()),
            "signature": base64.b64encode(key.sign(canonical_json(signed))).decode("ascii"),
        }
        with self.log_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return Checkpoint(seq, head, stamp, True, f"{LOG_NAME}:{self._count_lines()}")

    def maybe_checkpoint(self, trail: AuditTrail, every: int = 100) -> Checkpoint | None:
        """Checkpoint if the head is ``every`` or more entries past the last checkpoint."""
        seq, _ = trail.head()
        done = max((c.seq for c in self.read() if c.signature_ok), default=0)
        return self.checkpoint(trail) if seq and seq - done >= every else None

    def read(self, public_key: Ed25519PublicKey | str | Path | None = None) -> list[Checkpoint]:
        """Return every checkpoint of the log, each with its signature checked.

        ``public_key`` (a key or a PEM file) is the key to trust; by default the folder's
        own public key. A line that cannot be read comes back with ``signature_ok`` False.
        An absent log gives an empty list.
        """
        if not self.log_path.exists():
            return []
        if public_key is None:
            key: Ed25519PublicKey | None = (
                load_public_key(self.public_key_path) if self.public_key_path.exists() else None
            )
        elif isinstance(public_key, Ed25519PublicKey):
            key = public_key
        else:
            key = load_public_key(public_key)
        lines = self.log_path.read_text(encoding="utf-8").splitlines()
        return [_check(line, key, f"{LOG_NAME}:{i}") for i, line in enumerate(lines, 1) if line]

    def _private_key(self) -> Ed25519PrivateKey:
        if self.key_path.exists():
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"{self.key_path} is not an Ed25519 private key")
            return key
        self.folder.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        self.public_key_path.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return key

    def _count_lines(self) -> int:
        return sum(1 for line in self.log_path.read_text(encoding="utf-8").splitlines() if line)


def _key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _check(line: str, key: Ed25519PublicKey | None, source: str) -> Checkpoint:
    """Parse one log line and verify its signature with ``key`` (None: cannot verify)."""
    try:
        obj: dict[str, Any] = json.loads(line)
        seq, head, stamp = obj["seq"], obj["hash"], obj["time_utc"]
        if not (isinstance(seq, int) and isinstance(head, str) and isinstance(stamp, str)):
            raise ValueError("seq, hash or time_utc of the wrong type")
        signature = base64.b64decode(obj["signature"], validate=True)
    except (ValueError, KeyError, TypeError):
        return Checkpoint(0, "", "", False, source)
    ok = key is not None
    if key is not None:
        try:
            key.verify(signature, canonical_json({"hash": head, "seq": seq, "time_utc": stamp}))
        except InvalidSignature:
            ok = False
    return Checkpoint(seq, head, stamp, ok, source)
