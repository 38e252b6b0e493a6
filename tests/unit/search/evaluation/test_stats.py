import math

import numpy as np
import pytest

from search.evaluation.stats import (
    fresh_pairs_pvalue,
    gap_in_standard_errors,
    paired_tests,
    sampling_floor,
    summarize,
)


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


def test_sampling_floor_is_the_binomial_error_with_the_finite_pool_counted():
    assert sampling_floor(0.8, 1000) == pytest.approx(math.sqrt(0.16 / 1000))
    assert sampling_floor(0.8, 1000, pool_fraction=0.2) == pytest.approx(math.sqrt(0.8 * 0.16 / 1000))
    assert sampling_floor(1.0, 1000) == 0.0
    for bad in ((1.2, 1000, 0.0), (0.8, 0, 0.0), (0.8, 1000, 1.0)):
        with pytest.raises(ValueError):
            sampling_floor(bad[0], bad[1], pool_fraction=bad[2])


def _runs(
    rng: np.random.Generator, p: float, *, fresh: bool, runs: int = 10, n: int = 1000
) -> tuple[float, float, int]:
    """(mean, std, runs) of `runs` models of true accuracy p (training noise 0.3 points), each scored on
    its own fresh n pairs, or all on one shared set."""
    models = rng.normal(p, 0.003, runs)
    if fresh:
        scores = rng.binomial(n, models) / n
    else:
        hard = rng.binomial(n, p) / n - p  # the shared set's luck, the same for every run
        scores = models + hard
    return float(scores.mean()), float(scores.std(ddof=1)), runs


def test_fresh_pairs_pvalue_tells_fresh_sets_from_one_shared_set():
    """Simulated reports of 12 rows: with fresh pairs a run the p-value is spread over (0, 1) (a false
    alarm below 0.01 about once in a hundred); with one shared set it is tiny every time."""
    rng = np.random.default_rng(0)
    accuracies = np.linspace(0.76, 0.94, 12)
    fresh = [fresh_pairs_pvalue([_runs(rng, p, fresh=True) for p in accuracies], 1000) for _ in range(200)]
    shared = [fresh_pairs_pvalue([_runs(rng, p, fresh=False) for p in accuracies], 1000) for _ in range(50)]
    assert 0.3 < float(np.median(fresh)) < 0.7 and np.mean(np.array(fresh) < 0.01) < 0.05
    assert max(shared) < 1e-6
    assert math.isnan(fresh_pairs_pvalue([(0.9, 0.01, 1)], 1000))  # one run: no std to judge


def test_gap_in_standard_errors_counts_ours_the_published_runs_and_the_shared_sets_error():
    ours = summarize([0.80, 0.82, 0.81, 0.79, 0.83])
    z = gap_in_standard_errors(ours, 0.78, published_error=0.004, set_error=0.012)
    assert z == pytest.approx((0.81 - 0.78) / math.sqrt(ours.std**2 / 5 + 0.004**2 + 0.012**2))
    # A published mean whose runs disagreed widely is no firmer than they allow: the same gap is fewer standard errors.
    wide = gap_in_standard_errors(ours, 0.78, published_error=0.039, set_error=0.012)
    assert wide == pytest.approx(0.03 / math.sqrt(ours.std**2 / 5 + 0.039**2 + 0.012**2)) and wide < z / 2
    assert math.isnan(gap_in_standard_errors(summarize([0.8]), 0.78, published_error=0.0, set_error=0.012))
