import math

import pytest
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from recsys_experiments.lib.statistics import compare_proportions, sample_ratio_mismatch

CASES = [
    # control converted, control exposed, variant converted, variant exposed
    (300, 1000, 350, 1000),
    (12, 150, 30, 160),
    (500, 2000, 480, 2100),
    (1, 40, 0, 35),
    (990, 1000, 999, 1000),
    (0, 50, 3, 60),
]


@pytest.mark.parametrize(("c0", "n0", "c1", "n1"), CASES)
def test_matches_statsmodels_to_1e6(c0, n0, c1, n1):
    result = compare_proportions(control_converted=c0, control_exposed=n0, converted=c1, exposed=n1)
    _, p_value = proportions_ztest([c1, c0], [n1, n0])
    low, high = confint_proportions_2indep(c1, n1, c0, n0, method="wald", compare="diff")

    assert result.abs_lift == pytest.approx(c1 / n1 - c0 / n0, abs=1e-12)
    assert result.p_value == pytest.approx(p_value, abs=1e-6)
    assert result.ci_low == pytest.approx(low, abs=1e-6)
    assert result.ci_high == pytest.approx(high, abs=1e-6)


def test_relative_lift_and_a_zero_control_rate():
    assert compare_proportions(
        control_converted=100, control_exposed=1000, converted=120, exposed=1000
    ).rel_lift == pytest.approx(0.2)
    zero = compare_proportions(control_converted=0, control_exposed=10, converted=2, exposed=10)
    assert zero.rel_lift is None and zero.p_value is not None


@pytest.mark.parametrize(
    ("c0", "n0", "c1", "n1", "note"),
    [
        (0, 0, 5, 10, "not enough data"),
        (3, 10, 0, 0, "not enough data"),
        (0, 10, 0, 12, "no variance"),
        (10, 10, 12, 12, "no variance"),
    ],
)
def test_small_or_degenerate_samples_answer_without_nan(c0, n0, c1, n1, note):
    result = compare_proportions(control_converted=c0, control_exposed=n0, converted=c1, exposed=n1)

    assert result.note == note
    assert not any(isinstance(v, float) and math.isnan(v) for v in result.as_dict().values())


def test_srm_flags_an_imbalance_and_passes_a_fair_split():
    fair = sample_ratio_mismatch([1010, 990], [0.5, 0.5])
    skewed = sample_ratio_mismatch([1100, 900], [0.5, 0.5])
    uneven_fair = sample_ratio_mismatch([205, 295, 500], [0.2, 0.3, 0.5])

    assert fair["flagged"] is False and fair["p_value"] > 0.5
    assert skewed["flagged"] is True and skewed["p_value"] < 0.001
    assert uneven_fair["flagged"] is False
    assert sample_ratio_mismatch([0, 0], [0.5, 0.5]) == {
        "p_value": None,
        "flagged": False,
        "note": "not enough data",
    }
