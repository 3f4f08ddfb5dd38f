"""lds.measures.wilson_interval and share_difference: the intervals that decide whether one kept share is below
another beyond sampling (chapter 2's claim 4), checked against the worked examples of Newcombe's two papers."""

import pytest

from lds.measures import share_difference, wilson_interval


def test_wilson_interval_matches_newcombe_1998a():
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Statistics in Medicine 17:857,
    # Table I: 81/263 -> 0.2553 to 0.3662 (score method); 0/20 -> 0 to 0.1611
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    lo, hi = wilson_interval(0, 20)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(0.1611, abs=1e-4)


def test_share_difference_matches_newcombe_1998b():
    # Newcombe (1998), "Interval estimation for the difference between independent proportions", Statistics in
    # Medicine 17:873, Table II, method 10: 56/70 - 48/80 -> 0.0524 to 0.3339; 9/10 - 3/10 -> 0.1705 to 0.8090
    d, lo, hi = share_difference(56, 70, 48, 80)
    assert d == pytest.approx(0.2) and (lo, hi) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    assert share_difference(9, 10, 3, 10)[1:] == pytest.approx((0.1705, 0.8090), abs=1e-4)


def test_a_small_sample_cannot_decide_what_a_large_one_can():
    # the same two shares, 4% against 5%: on 300 pairs each the interval straddles 0, on 30,000 it lies below it
    assert share_difference(12, 300, 15, 300)[2] > 0
    assert share_difference(1200, 30000, 1500, 30000)[2] < 0
