"""Chapter 9 (Conclusion): its summary is computed from the executed chapters' records."""

from __future__ import annotations

from lds.book.claims import CLAIMS


def test_conclusion_counts_match_chapters(executed):
    # execute chapters 7 and 8 first, so the conclusion has their records to read
    ch7, ch8 = executed("07_denoising"), executed("08_guidance")
    records = executed("09_conclusion")
    assert {"07_denoising", "08_guidance"} <= set(records["chapters_read"])
    counted = (records["claims_holds"] + records["claims_holds_in_part"] + records["claims_holds_with_qualifier"]
               + records["claims_do_not_hold"]
               + records["claims_not_computational"] + records["claims_not_testable"])
    assert counted == records["claims_recorded"]
    assert records["claims_recorded"] + records["claims_not_recorded"] == len(CLAIMS)
    mine = {k: v for r in (ch7, ch8) for k, v in r.items() if k.startswith("claim:")}
    assert len(mine) == 9  # claims 13, 15, 16, 23 and 19, 20, 21, 22, 24
    assert records["claims_recorded"] >= len(mine)
    assert records["claims_holds_with_qualifier"] >= sum(c["verdict"] == "holds with a qualifier" for c in mine.values())


def test_conclusion_separates_the_two_centres(executed):
    """The guidance/default finding reaches the conclusion as read records, not typed figures."""
    ch7, ch8 = executed("07_denoising"), executed("08_guidance")
    records = executed("09_conclusion")
    tones = {g: t for g, t in ch7["tone_summary"].items() if t["shows_gesture_share"] >= 0.5}  # the gestures drawn
    first = ch8["default_gesture"]  # chapter 8's gesture across the dial, which chapter 7 also counts
    assert first in tones
    assert records["default_gesture"] == first
    assert records["default_share_prompt_alone"] == tones[first]["unguided_unmarked_share"]
    assert records["default_share_guided"] == tones[first]["generated_unmarked_share"]
    assert records["default_gestures_counted"] == len(tones)
    assert records["default_gestures_rising"] + records["default_gestures_already_all"] <= len(tones)
    assert records["default_gestures_already_all"] == sum(t["unguided_unmarked_share"] >= 0.999 for t in tones.values())
    # the low end of the dial is read from the mean image, not from a tone of images that show no hand (issue 27, item 2)
    assert records["default_shows_unconditional"] == ch8["default_shows_at_0"]
    assert records["mean_to_corpus_at_0"] == ch8["mean_to_corpus_at_0_max"]
    assert records["mean_low_end_word"] == ("is nearest the corpus mean" if ch8["mean_to_corpus_at_0_max"]
                                            < ch8["mean_to_corpus_above_1_min"] else "is not nearest the corpus mean")
    # ... and against its base rate, the mean of as many corpus images drawn at random (issue 27's second read: being
    # nearer the corpus mean than the prompted means is no test)
    within, n = records["low_end_within_random"], records["low_end_sets"]
    sets = {(v["seeds"], v["unprompted"]): v for v in ch8["low_end_vs_random_sample"].values()}  # shared seeds: one set
    assert n == ch8["low_end_sets"] == len(sets)
    assert within == ch8["low_end_within_random"] == sum(v["unprompted"] <= v["random_95"] for v in sets.values())
    word = records["low_end_sample_word"]
    assert word.startswith("is farther") if within == 0 else ("for some sets" in word) if within < n else \
        word.startswith("is no farther")
    assert records["distance_added_above_1"] == ch8["distance_added_above_1_median"]
