"""Chapter 9 (Conclusion): its summary is computed from the executed chapters' records."""

from __future__ import annotations

from lds.claims import CLAIMS


def test_conclusion_counts_match_chapters(executed):
    # execute chapters 7 and 8 first, so the conclusion has their records to read
    ch7, ch8 = executed("07_denoising"), executed("08_guidance")
    records = executed("09_conclusion")
    assert {"07_denoising", "08_guidance"} <= set(records["chapters_read"])
    counted = (records["claims_holds"] + records["claims_holds_with_qualifier"] + records["claims_do_not_hold"]
               + records["claims_not_computational"] + records["claims_not_testable"])
    assert counted == records["claims_recorded"]
    assert records["claims_recorded"] + records["claims_not_recorded"] == len(CLAIMS)
    mine = {k: v for r in (ch7, ch8) for k, v in r.items() if k.startswith("claim:")}
    assert len(mine) == 9  # claims 13, 15, 16, 23 and 19, 20, 21, 22, 24
    assert records["claims_recorded"] >= len(mine)
    assert records["claims_holds_with_qualifier"] >= sum(c["verdict"] == "holds with a qualifier" for c in mine.values())
