"""QC records in the historian and the recorded batch disposition."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from biopilot.quality import QCAttributes, Spec, batch_qc, record_qc, release_batch
from biopilot.store import Historian, UnknownBatchError

FRAME = QCAttributes(
    n_frames=1,
    n_cells=1000,
    n_live=900,
    field_area_mm2=10.0,
    viable_cells_per_cm2=9000.0,
    viable_cells_per_ml=float("nan"),
    viability=0.9,
    confluence=0.3,
    differentiated_fraction=0.1,
    dry_mass_pg_mean=200.0,
    dry_mass_pg_median=190.0,
    dry_mass_pg_p10=100.0,
    dry_mass_pg_p90=300.0,
    dry_mass_cv=0.3,
)


@pytest.fixture()
def store(tmp_path):
    h = Historian(tmp_path / "line.db")
    h.ensure_site("site")
    h.ensure_area("site", "qc")
    h.ensure_unit("site", "qc", "incubator-1", kind="imaging incubator")
    h.ensure_product("cells")
    h.start_batch("B-001", "incubator-1", "cells", None, datetime(2026, 1, 1, tzinfo=UTC))
    return h


def test_frames_are_filed_and_pooled(store):
    record_qc(store, "B-001", FRAME, author="qa", source="a.tiff")
    record_qc(
        store, "B-001", replace(FRAME, n_live=500, viability=0.5), author="qa", source="b.tiff"
    )
    records = store.read_records(store.batch("B-001").id, "qc_result")
    assert [r.body["source"] for r in records] == ["a.tiff", "b.tiff"]
    assert batch_qc(store, "B-001").viability == pytest.approx(1400 / 2000)
    from biopilot.store.audit import AuditTrail

    audit = [e for e in AuditTrail(store).entries() if e.action == "qc_result_add"]
    assert [(e.actor, e.new_value["source"]) for e in audit] == [("qa", "a.tiff"), ("qa", "b.tiff")]
    assert audit[0].reason == "imaging QC of a.tiff"


def test_release_records_the_disposition_with_reasons(store):
    record_qc(store, "B-001", FRAME, author="qa", source="a.tiff")
    spec = Spec(product="cells", min_cells_counted=100, viability_min=0.95)
    decision, qc, rid = release_batch(store, "B-001", spec, author="qp")
    assert decision.disposition == "fail"
    (rec,) = store.read_records(store.batch("B-001").id, "release")
    assert rec.id == rid and rec.author == "qp"
    assert rec.body["disposition"] == "fail"
    assert rec.body["reasons"] == decision.reasons
    assert rec.body["specification"]["viability_min"] == 0.95
    assert qc.n_cells == 1000


def test_release_without_qc_results_is_refused(store):
    with pytest.raises(ValueError, match="no QC results"):
        release_batch(store, "B-001", Spec(product="cells"), author="qp")
    with pytest.raises(UnknownBatchError):
        release_batch(store, "B-404", Spec(product="cells"), author="qp")


def test_a_specification_of_another_product_is_refused_and_nothing_is_filed(store):
    record_qc(store, "B-001", FRAME, author="qa", source="a.tiff")
    with pytest.raises(ValueError, match=r"specification is for 'mAb-1'.*makes 'cells'"):
        release_batch(store, "B-001", Spec(product="mAb-1"), author="qp")
    assert store.read_records(store.batch("B-001").id, "release") == []
