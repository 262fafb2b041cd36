"""Electronic signature of a batch release, bound to a digest of the whole batch record.

21 CFR Part 11: the QA approver re-enters user name and password at each signing
(11.200(a)(1)); the signature shows the printed name, the UTC time and its meaning
(11.50(a)); it is bound to the SHA-256 of the batch record it signs, so it cannot be
copied to another record and any later change to the record invalidates it (11.70).
Separation of duties: whoever recorded a QC result of the batch cannot sign its release
(EU GMP Chapter 2, Annex 16). No signature before a QC disposition exists: a ``release``
record with a ``disposition``, as :func:`biopilot.quality.release_batch` writes. Every
signature and every refusal writes an audit entry.

The batch record digest covers, in RFC 8785 canonical JSON: the batch (identity, unit,
product, recipe, times, status, metadata, phases), its records other than signatures (QC
results, specifications, dispositions, deviations, comments), its events (alarms,
acknowledgements, setpoint changes...), and a streamed SHA-256 of its samples and spectra.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, Literal

import sqlalchemy as sa

from biopilot.store import schema as s
from biopilot.store.audit import format_time
from biopilot.store.canonical import canonical_json
from biopilot.store.historian import Historian
from biopilot.store.permissions import Action, PermissionDenied
from biopilot.store.timebase import to_us
from biopilot.store.users import UserStore

__all__ = [
    "DISPOSITION_KIND",
    "SIGNATURE_KIND",
    "Meaning",
    "RecordDigest",
    "Signature",
    "SignatureRefused",
    "SignatureStatus",
    "batch_record_digest",
    "batch_signatures",
    "sign_batch",
    "signature_status",
]

SIGNATURE_KIND = "signature"
DISPOSITION_KIND = "release"  # the QC disposition record of biopilot.quality.release_batch
QC_RESULT_KIND = "qc_result"


class Meaning(StrEnum):
    """What a release signature means (11.50(a)(3))."""

    APPROVED = "approved"
    REJECTED = "rejected"


class SignatureRefused(Exception):
    """The signature was refused; the message says why (the refusal is audited)."""


@dataclass(frozen=True, slots=True)
class RecordDigest:
    """The SHA-256 of a batch record and of each of its parts (batch, records, events...)."""

    digest: str
    parts: dict[str, str]


@dataclass(frozen=True, slots=True)
class Signature:
    """A release signature as stored in the batch's ``signature`` record."""

    record_id: int
    batch_id: int
    batch_code: str
    signer: str
    printed_name: str
    role: str
    meaning: str
    comment: str
    time_utc: str
    record_digest: str

    def manifestation(self) -> str:
        """Return the human-readable signature (11.50): name, UTC time, meaning, comment."""
        return (
            f"Signed electronically by {self.printed_name} ({self.signer}) on "
            f"{self.time_utc} — {self.meaning}: {self.comment}"
        )


@dataclass(frozen=True, slots=True)
class SignatureStatus:
    """Whether a signature still holds: ``valid``, or ``invalidated`` with the reason."""

    state: Literal["valid", "invalidated"]
    reason: str | None
    signature: Signature

    @property
    def valid(self) -> bool:
        """True while the signed record is unchanged."""
        return self.state == "valid"


def batch_record_digest(historian: Historian, batch: int | str) -> RecordDigest:
    """Return the canonical digest of everything the store holds for a batch but signatures.

    Raises UnknownBatchError for an unknown batch.
    """
    info = historian.batch(batch)
    head = info.as_dict()
    for counter in ("n_samples", "n_spectra", "n_events", "n_records"):
        head.pop(counter)  # derived: the rows themselves are hashed below
    records = [
        {"id": r.id, "kind": r.kind, "time_utc": r.time_utc.isoformat(), "author": r.author}
        | {"body": r.body}
        for r in historian.read_records(info.id)
        if r.kind != SIGNATURE_KIND
    ]
    events = [
        {"id": e.id, "time_utc": e.time_utc.isoformat(), "unit": e.unit, "kind": e.kind}
        | {"severity": e.severity, "message": e.message, "payload": e.payload}
        for e in historian.read_events(batch_id=info.id)
    ]
    parts = {"batch": _sha(head), "records": _sha(records), "events": _sha(events)}
    parts |= _data_digests(historian, info.id)
    return RecordDigest(_sha(parts), parts)


def sign_batch(
    historian: Historian,
    users: UserStore,
    batch: int | str,
    *,
    username: str,
    password: str,
    meaning: Meaning | str,
    comment: str,
    record_digest: str,
) -> Signature:
    """Sign the release of a batch and return the signature.

    Parameters
    ----------
    historian, users : Historian, UserStore
        The store and its users (whose audit trail records the signature).
    batch : int or str
        Batch id or code.
    username, password : str
        Re-entered by the signer at this signing (11.200(a)(1)).
    meaning : Meaning or str
        ``approved`` or ``rejected``.
    comment : str
        Why; required.
    record_digest : str
        The :func:`batch_record_digest` of the record the signer reviewed: a signature
        prepared for another record, or a record that changed since review, is refused.

    Raises
    ------
    AuthenticationError
        Wrong password, locked account (the failure counts toward lockout).
    PermissionDenied
        The signer's role may not release batches.
    SignatureRefused
        No QC disposition yet, the signer recorded a QC result of the batch, the digest is
        not this record's, or the same signature exists already.
    """
    info = historian.batch(batch)
    audit = users.audit
    meaning = Meaning(meaning)

    def refuse(actor: str, why: str) -> None:
        audit.record(
            actor,
            "e_signature_refused",
            "batch",
            info.code,
            reason=why,
            new={"meaning": meaning.value, "comment": comment},
        )

    user = users.authenticate(username, password, purpose="signature_password")
    try:
        users.authorize(user, Action.RELEASE_BATCH)
    except PermissionDenied as err:
        refuse(user.username, str(err))
        raise
    why = _refusal(historian, info.id, info.code, user.username, user.full_name, comment)
    current = batch_record_digest(historian, info.id)
    if why is None and record_digest != current.digest:
        why = f"the digest signed is not that of batch {info.code!r}'s record as it stands"
    if why is None and any(
        st.signature.signer == user.username
        and st.signature.record_digest == current.digest
        and st.signature.meaning == meaning.value
        for st in batch_signatures(historian, info.id)
    ):
        why = f"{user.username!r} already signed this record as {meaning.value}: a replay"
    if why is not None:
        refuse(user.username, why)
        raise SignatureRefused(why)
    now = audit.clock()
    body: dict[str, Any] = {
        "batch_id": info.id,
        "batch_code": info.code,
        "signer": user.username,
        "printed_name": user.full_name,
        "role": user.role.value,
        "meaning": meaning.value,
        "comment": comment,
        "time_utc": format_time(to_us(now, "server clock")),
        "record_digest": current.digest,
        "record_parts": current.parts,
    }
    body["signature_hash"] = _sha(body)
    rid = historian.add_record(info.id, SIGNATURE_KIND, body, user.username, now)
    audit.record(
        user.username,
        "e_signature",
        "batch",
        info.code,
        reason=comment,
        new={k: body[k] for k in _SHOWN} | {"record_id": rid},
    )
    return _signature(rid, body)


def signature_status(
    historian: Historian, record_id: int, batch: int | str | None = None
) -> SignatureStatus:
    """Return whether the signature in record ``record_id`` still holds (for ``batch``).

    It is invalidated when its record was altered, when it is filed under or checked
    against another batch than the one it signed (a replay), or when the batch record
    changed since signing; the reason names what changed. Raises ValueError if the record
    is not a signature.
    """
    with historian.engine.connect() as conn:
        row = conn.execute(sa.select(s.record).where(s.record.c.id == record_id)).first()
    if row is None or row.kind != SIGNATURE_KIND or not isinstance(row.body, dict):
        raise ValueError(f"record {record_id} is not a signature")
    body = dict(row.body)
    try:
        sig = _signature(record_id, body)
    except (KeyError, TypeError) as err:
        raise ValueError(f"record {record_id} is not a readable signature: {err}") from None
    stored = body.pop("signature_hash", None)
    reason = None
    if stored != _sha(body):
        reason = "the signature record was altered after signing"
    elif row.batch_id != sig.batch_id:
        reason = f"signature of batch {sig.batch_code!r} filed under batch {row.batch_id}: replay"
    elif batch is not None and historian.batch(batch).id != sig.batch_id:
        reason = f"signature of batch {sig.batch_code!r} presented for batch {batch!r}: replay"
    else:
        now = batch_record_digest(historian, sig.batch_id)
        if now.digest != sig.record_digest:
            was = body.get("record_parts") or {}
            changed = sorted(k for k in now.parts if was.get(k) != now.parts[k])
            reason = f"the batch record changed since signing ({', '.join(changed)})"
    return SignatureStatus("valid" if reason is None else "invalidated", reason, sig)


def batch_signatures(historian: Historian, batch: int | str) -> list[SignatureStatus]:
    """Return the status of every signature filed under a batch, oldest first."""
    info = historian.batch(batch)
    return [
        signature_status(historian, r.id, info.id)
        for r in historian.read_records(info.id, SIGNATURE_KIND)
    ]


_SHOWN = ("signer", "printed_name", "role", "meaning", "time_utc", "record_digest")


def _refusal(
    historian: Historian, batch_id: int, code: str, username: str, full_name: str, comment: str
) -> str | None:
    """Return why the batch cannot be signed by this user now, or None."""
    if not comment.strip():
        return "a comment is required with the signature"
    records = historian.read_records(batch_id)
    if not any(r.kind == DISPOSITION_KIND and "disposition" in r.body for r in records):
        return f"batch {code!r} has no QC disposition yet: record it before release"
    authors = {r.author for r in records if r.kind == QC_RESULT_KIND}
    if authors & {username, full_name}:
        return f"separation of duties: {username!r} recorded a QC result of batch {code!r}"
    return None


def _signature(record_id: int, body: dict[str, Any]) -> Signature:
    names = [f.name for f in fields(Signature) if f.name != "record_id"]
    return Signature(record_id=record_id, **{k: body[k] for k in names})


def _sha(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def _data_digests(historian: Historian, batch_id: int) -> dict[str, str]:
    """Stream SHA-256 digests of a batch's samples and spectra (by tag, time)."""
    samples, spectra = hashlib.sha256(), hashlib.sha256()
    q_samples = (
        sa.select(s.tag.c.name, s.sample.c.t_us, s.sample.c.value, s.sample.c.quality)
        .add_columns(s.sample.c.reason)
        .join(s.tag, s.tag.c.id == s.sample.c.tag_id)
        .where(s.sample.c.batch_id == batch_id)
        .order_by(s.tag.c.name, s.sample.c.t_us)
    )
    q_spectra = (
        sa.select(s.spectrum.c.t_us, s.spectrum.c.quality, s.spectrum.c.reason)
        .add_columns(s.spectrum_axis.c.digest, s.spectrum.c.data_f4)
        .join(s.spectrum_axis, s.spectrum_axis.c.id == s.spectrum.c.axis_id)
        .where(s.spectrum.c.batch_id == batch_id)
        .order_by(s.spectrum.c.t_us)
    )
    with historian.engine.connect() as conn:
        for row in conn.execute(q_samples):
            samples.update(canonical_json(list(row)) + b"\n")
        for t_us, quality, reason, axis, data in conn.execute(q_spectra):
            line = [t_us, quality, reason, axis, hashlib.sha256(data).hexdigest()]
            spectra.update(canonical_json(line) + b"\n")
    return {"samples": samples.hexdigest(), "spectra": spectra.hexdigest()}
