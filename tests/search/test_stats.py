import math

import pytest

from search.stats import paired_tests, summarize


def test_summarize_known_numbers():
    s = summarize([1, 2, 3, 4, 5])
    assert s.n == 5
    assert s.mean == 3.0
    assert s.std == pytest.approx(math.sqrt(2.5))  # ddof=1
    # t(0.975, df=4) = 2.776445; half width = 2.776445 * sqrt(2.5) / sqrt(5)
    assert s.ci_low == pytest.approx(3 - 1.963243, abs=1e-6)
    assert s.ci_high == pytest.approx(3 + 1.963243, abs=1e-6)


def test_summarize_small_and_constant_samples():
    assert summarize([]).n == 0 and math.isnan(summarize([]).mean)
    one = summarize([0.9])
    assert one.mean == 0.9 and math.isnan(one.std) and math.isnan(one.ci_low)
    same = summarize([0.8, 0.8, 0.8])
    assert (same.std, same.ci_low, same.ci_high) == (0.0, 0.8, 0.8)
    assert summarize([0.9]).to_dict()["std"] is None  # JSON has no nan


def test_summarize_rejects_bad_confidence():
    with pytest.raises(ValueError, match="confidence"):
        summarize([1, 2], confidence=95)


def test_paired_tests_known_numbers():
    a = [1, 2, 3, 4, 5]
    b = [1.5, 2, 2.5, 5, 5.5]  # differences -0.5, 0, 0.5, -1, -0.5
    p = paired_tests(a, b)
    assert p.n == 5
    assert p.mean_difference == pytest.approx(-0.3)
    sd = math.sqrt(sum((d + 0.3) ** 2 for d in (-0.5, 0, 0.5, -1, -0.5)) / 4)
    assert p.t_statistic == pytest.approx(-0.3 / (sd / math.sqrt(5)))
    assert p.t_pvalue == pytest.approx(0.304559, abs=1e-5)
    # zsplit: ranks of |d| = 0.5,0,0.5,1,0.5 -> zero gets rank 1 split half/half; positives: 0.5 (rank 3) + 0.5
    assert p.wilcoxon_statistic == pytest.approx(3.5)
    assert p.wilcoxon_pvalue == pytest.approx(0.5)
    assert not p.significant()


def test_paired_tests_clear_difference_is_significant():
    a = [0.95, 0.96, 0.94, 0.97, 0.95, 0.96, 0.95, 0.97, 0.96, 0.94]
    b = [0.90, 0.92, 0.91, 0.90, 0.93, 0.91, 0.90, 0.92, 0.91, 0.90]
    p = paired_tests(a, b)
    assert p.mean_difference == pytest.approx(0.045)
    assert p.t_pvalue < 1e-5 and p.wilcoxon_pvalue < 0.01
    assert p.significant() and p.to_dict()["significant"] is True


def test_paired_tests_all_zero_differences():
    p = paired_tests([0.9, 0.91, 0.92], [0.9, 0.91, 0.92])
    assert (p.mean_difference, p.t_pvalue, p.wilcoxon_pvalue) == (0.0, 1.0, 1.0)
    assert not p.significant()


def test_paired_tests_float_noise_ties():
    # 0.86-0.85 and 0.94-0.93 differ in the last float bit; all four |d| = 0.01 must tie in the ranks.
    p = paired_tests([0.86, 0.87, 0.94, 0.85], [0.85, 0.86, 0.93, 0.86])
    assert p.wilcoxon_statistic == pytest.approx(2.5)  # four tied |d| share rank 2.5; the one negative sums to 2.5


def test_paired_tests_needs_matching_lengths():
    with pytest.raises(ValueError, match="one length"):
        paired_tests([1, 2], [1, 2, 3])
    assert math.isnan(paired_tests([0.9], [0.8]).t_pvalue)
