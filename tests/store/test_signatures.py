"""E-signature of a batch release: re-entered password, meaning, binding, invalidation, replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from biopilot.store import Historian, NewEvent
from biopilot.store.audit import AuditTrail
from biopilot.store.signatures import (
    Meaning,
    SignatureRefused,
    batch_record_digest,
    batch_signatures,
    sign_batch,
    signature_status,
)
from biopilot.store.users import (
    FAST_TEST_HASHER,
    AuthenticationError,
    PermissionDenied,
    Role,
    UserStore,
)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
PW = "correct horse battery"


class Site:
    """A store with a batch, its QC result and disposition, and the people of the site."""

    def __init__(self, folder: Path) -> None:
        self.h = Historian(folder / "line.db")
        self.h.ensure_unit("Basel", "USP", "BR-01")
        self.h.ensure_product("mAb-1")
        self.t = T0
        self.users = UserStore(
            self.h, AuditTrail(self.h, clock=self.clock), hasher=FAST_TEST_HASHER
        )
        admin = self.users.add_user("ada", "Ada Admin", Role.ADMINISTRATOR, PW, by=None, reason="b")
        for name, full, role in [
            ("quinn", "Quinn Quality", Role.QA_APPROVER),
            ("qiao", "Qiao Both-Hats", Role.QA_APPROVER),
            ("cora", "Cora Chemist", Role.QC_ANALYST),
            ("olga", "Olga Operator", Role.OPERATOR),
        ]:
            self.users.add_user(name, full, role, PW, by=admin, reason="site staff")
        self.b1 = self.batch("B001", qc_by="cora", disposition=True)

    def clock(self) -> datetime:
        self.t += timedelta(seconds=1)
        return self.t

    def batch(self, code: str, qc_by: str, disposition: bool) -> int:
        bid = self.h.start_batch(code, "BR-01", "mAb-1", None, T0, {"seed": 1})
        self.h.write_events(bid, "BR-01", [NewEvent(time_utc=T0, kind="alarm", message="DO low")])
        self.h.add_record(bid, "qc_result", {"viability": 0.95}, qc_by)
        if disposition:
            self.h.add_record(bid, "release", {"disposition": "pass", "reasons": []}, "qc-service")
        return bid

    def sign(self, bid: int, who: str = "quinn", password: str = PW, **kw):
        kw.setdefault("record_digest", batch_record_digest(self.h, bid).digest)
        kw.setdefault("meaning", Meaning.APPROVED)
        kw.setdefault("comment", "all results within specification")
        return sign_batch(self.h, self.users, bid, username=who, password=password, **kw)

    def actions(self) -> list[str]:
        return [e.action for e in self.users.audit.entries()]


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


def test_a_signature_shows_printed_name_utc_time_and_meaning_and_is_valid(site: Site) -> None:
    sig = site.sign(site.b1)
    assert (sig.signer, sig.printed_name, sig.meaning) == ("quinn", "Quinn Quality", "approved")
    assert sig.time_utc.endswith("Z") and sig.time_utc.startswith("2026-03-01T08:")
    text = sig.manifestation()
    assert "Quinn Quality" in text and sig.time_utc in text and "approved" in text
    status = signature_status(site.h, sig.record_id)
    assert status.valid and status.reason is None
    audit = site.users.audit.entries()[-1]
    assert (audit.actor, audit.action, audit.object_id) == ("quinn", "e_signature", "B001")
    assert audit.new_value["record_digest"] == sig.record_digest


def test_a_rejection_is_a_signature_too(site: Site) -> None:
    sig = site.sign(site.b1, meaning="rejected", comment="viability trend out of trend")
    assert sig.meaning == "rejected" and signature_status(site.h, sig.record_id).valid


@pytest.mark.parametrize(
    "later",
    [
        ("records", lambda h, b: h.add_record(b, "deviation", {"what": "late feed"}, "olga")),
        (
            "events",
            lambda h, b: h.write_events(
                b, "BR-01", [NewEvent(time_utc=T0, kind="acknowledgement", message="ack")]
            ),
        ),
        (
            "samples",
            lambda h, b: h.write_samples(
                b, "BR-01", pd.DataFrame({"time_utc": [T0], "tag": ["ph"], "value": [7.0]})
            ),
        ),
        ("batch", lambda h, b: h.end_batch(b, T0 + timedelta(days=1))),
    ],
    ids=lambda p: p[0] if isinstance(p, tuple) else "",
)
def test_any_later_change_to_the_record_invalidates_the_signature(site: Site, later) -> None:
    part, change = later
    sig = site.sign(site.b1)
    change(site.h, site.b1)
    status = signature_status(site.h, sig.record_id)
    assert status.state == "invalidated"
    assert status.reason == f"the batch record changed since signing ({part})"


def test_an_edit_behind_the_stores_back_invalidates_the_signature(site: Site) -> None:
    sig = site.sign(site.b1)
    with site.h.engine.begin() as c:
        c.execute(sa.text("DROP TRIGGER record_no_update"))
        c.execute(
            sa.text("UPDATE record SET body = '{\"viability\": 0.99}' WHERE kind = 'qc_result'")
        )
    status = signature_status(site.h, sig.record_id)
    assert not status.valid and "(records)" in (status.reason or "")
    with site.h.engine.begin() as c:
        forged = "json_set(body, '$.meaning', 'rejected')"  # approved -> rejected
        c.execute(sa.text(f"UPDATE record SET body = {forged} WHERE id = {sig.record_id}"))
    assert (
        signature_status(site.h, sig.record_id).reason
        == "the signature record was altered after signing"
    )


def test_the_wrong_password_is_refused_audited_and_counts_toward_lockout(site: Site) -> None:
    with pytest.raises(AuthenticationError):
        site.sign(site.b1, password="not my password")
    assert "signature_password_failed" in site.actions()
    assert site.users.get_user("quinn").failed_attempts == 1
    assert batch_signatures(site.h, site.b1) == []


def test_only_a_qa_approver_may_sign(site: Site) -> None:
    for who in ("olga", "cora", "ada"):
        with pytest.raises(PermissionDenied, match="release_batch"):
            site.sign(site.b1, who=who)
    assert site.actions().count("e_signature_refused") == 3


def test_whoever_recorded_a_qc_result_cannot_approve_that_batch(site: Site) -> None:
    b2 = site.batch("B002", qc_by="qiao", disposition=True)
    with pytest.raises(SignatureRefused, match="separation of duties"):
        site.sign(b2, who="qiao")
    assert site.users.audit.entries()[-1].action == "e_signature_refused"
    assert site.sign(b2, who="quinn").signer == "quinn"  # another approver may


def test_no_release_before_a_qc_disposition_exists(site: Site) -> None:
    b3 = site.batch("B003", qc_by="cora", disposition=False)
    with pytest.raises(SignatureRefused, match="no QC disposition"):
        site.sign(b3)
    site.h.add_record(b3, "release", {"disposition": "review", "reasons": ["low count"]}, "qc")
    assert site.sign(b3).batch_code == "B003"


def test_a_signature_replayed_on_another_record_is_refused(site: Site) -> None:
    b2 = site.batch("B002", qc_by="cora", disposition=True)
    digest_b1 = batch_record_digest(site.h, site.b1).digest
    with pytest.raises(SignatureRefused, match="not that of batch 'B002'"):
        site.sign(b2, record_digest=digest_b1)  # the request made for B001, sent for B002
    sig = site.sign(site.b1, record_digest=digest_b1)
    with pytest.raises(SignatureRefused, match="replay"):
        site.sign(site.b1, record_digest=digest_b1)  # the same request sent twice
    status = signature_status(site.h, sig.record_id, batch=b2)
    assert not status.valid and "presented for batch" in (status.reason or "")
    body = site.h.read_records(site.b1, "signature")[0].body
    copied = site.h.add_record(b2, "signature", body, "quinn")  # pasted into B002's record
    assert "filed under batch" in (signature_status(site.h, copied).reason or "")
    assert [s.valid for s in batch_signatures(site.h, b2)] == [False]
    assert site.actions().count("e_signature_refused") == 2


def test_a_comment_is_required(site: Site) -> None:
    with pytest.raises(SignatureRefused, match="comment"):
        site.sign(site.b1, comment="  ")


def test_the_digest_covers_the_record_but_not_its_signatures(site: Site) -> None:
    before = batch_record_digest(site.h, site.b1)
    assert set(before.parts) == {"batch", "records", "events", "samples", "spectra"}
    site.sign(site.b1)
    assert batch_record_digest(site.h, site.b1) == before
