"""Summaries and paired tests over per-draw accuracies: pure functions on plain numbers (scipy).

Accuracies of different configurations are measured on the same draw seeds, so configurations are
compared draw by draw (paired) rather than as two independent samples.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

CONFIDENCE = 0.95  # level of every confidence interval we print
SIGNIFICANCE = 0.05  # p-value below which a paired difference is called real


@dataclass(frozen=True)
class Summary:
    """Mean, sample std (ddof=1) and the t-distribution confidence interval of the mean."""

    n: int
    mean: float  # nan when n == 0
    std: float  # ddof=1; nan when n < 2
    ci_low: float  # nan when n < 2
    ci_high: float

    def to_dict(self) -> dict[str, float | int | None]:
        return {key: _finite_or_none(value) for key, value in self.__dict__.items()}


@dataclass(frozen=True)
class PairedTests:
    """Paired t test and Wilcoxon signed-rank test of a - b over the same draws."""

    n: int  # number of pairs
    mean_difference: float  # mean of a - b
    t_statistic: float
    t_pvalue: float
    wilcoxon_statistic: float
    wilcoxon_pvalue: float

    def significant(self, level: float = SIGNIFICANCE) -> bool:
        """Both tests agree that the difference is real at `level` (nan p-values never are)."""
        return self.t_pvalue < level and self.wilcoxon_pvalue < level

    def to_dict(self) -> dict[str, float | int | bool | None]:
        data: dict[str, float | int | bool | None] = {k: _finite_or_none(v) for k, v in self.__dict__.items()}
        data["significant"] = self.significant()
        return data


def summarize(values: Sequence[float], *, confidence: float = CONFIDENCE) -> Summary:
    """Mean, std (ddof=1), n and the `confidence` t interval of the mean of `values`."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1 exclusive, but got {confidence=}.")
    x = np.asarray(values, dtype=float)
    n = int(x.size)
    if n == 0:
        return Summary(n=0, mean=math.nan, std=math.nan, ci_low=math.nan, ci_high=math.nan)
    mean = float(x.mean())
    if n == 1:
        return Summary(n=1, mean=mean, std=math.nan, ci_low=math.nan, ci_high=math.nan)
    if np.ptp(x) == 0.0:  # identical values: scipy returns nan for a zero scale; the interval is the point
        value = float(x[0])  # not the mean, which float summation can move by an ulp
        return Summary(n=n, mean=value, std=0.0, ci_low=value, ci_high=value)
    std = float(x.std(ddof=1))
    low, high = _scipy_stats().t.interval(confidence, df=n - 1, loc=mean, scale=std / math.sqrt(n))
    return Summary(n=n, mean=mean, std=std, ci_low=float(low), ci_high=float(high))


def paired_tests(a: Sequence[float], b: Sequence[float]) -> PairedTests:
    """Paired t test (scipy.stats.ttest_rel) and Wilcoxon signed-rank test of a against b.

    Zero differences (the same accuracy on a draw, common with accuracies in steps of 1/N) stay in the
    Wilcoxon test with their ranks split between the signs (zero_method="zsplit"), so n matches the
    t test. When every difference is zero neither test has evidence of a difference: p = 1.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired tests need two 1-D sequences of one length, but got {x.shape} and {y.shape}.")
    n = int(x.size)
    # Accuracies are multiples of 1/N: round away float noise so equal differences tie in the ranks.
    diff = np.round(x - y, 12)
    if n < 2:
        mean = float(diff.mean()) if n else math.nan
        return PairedTests(n, mean, math.nan, math.nan, math.nan, math.nan)
    if not diff.any():
        return PairedTests(n, 0.0, 0.0, 1.0, math.nan, 1.0)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # constant differences: t = ±inf, p = 0 is the answer
        t = _scipy_stats().ttest_rel(x, y)
        w = _scipy_stats().wilcoxon(diff, zero_method="zsplit")
    return PairedTests(
        n=n,
        mean_difference=float(diff.mean()),
        t_statistic=float(t.statistic),
        t_pvalue=float(t.pvalue),
        wilcoxon_statistic=float(w.statistic),
        wilcoxon_pvalue=float(w.pvalue),
    )


def behind_pvalue(leader: Sequence[float], other: Sequence[float]) -> float:
    """One-sided paired t test that `other` is worse than `leader` over the same folds: the p-value.

    Folds whose differences are all equal give 0 when the leader is ahead on every one and 1 for a tie
    (scipy returns nan there); fewer than two pairs prove nothing (1).
    """
    differences = np.asarray(leader, dtype=float) - np.asarray(other, dtype=float)
    if len(differences) < 2:
        return 1.0
    if np.allclose(differences, differences[0]):
        return 0.0 if differences[0] > 0 else 1.0
    return float(_scipy_stats().ttest_rel(leader, other, alternative="greater").pvalue)


def sampling_floor(accuracy: float, n_pairs: int, *, pool_fraction: float = 0.0) -> float:
    """The least std an accuracy can have from run to run when each run scores `n_pairs` fresh pairs:
    a fixed model's binomial error sqrt(p(1-p)/n), lowered by the finite-pool factor (1 - f) on the
    variance when the pairs take a fraction f of their pool's digits. Training noise only adds to it."""
    if not 0.0 <= accuracy <= 1.0 or n_pairs < 1 or not 0.0 <= pool_fraction < 1.0:
        raise ValueError(
            f"need 0 <= accuracy <= 1, n_pairs >= 1, 0 <= pool_fraction < 1: {accuracy}, {n_pairs}, {pool_fraction}."
        )
    return math.sqrt(accuracy * (1.0 - accuracy) / n_pairs * (1.0 - pool_fraction))


def fresh_pairs_pvalue(
    figures: Sequence[tuple[float, float, int]], n_pairs: int, *, pool_fraction: float = 0.0
) -> float:
    """How likely stds this small are if every run scored its own fresh pairs: `figures` holds (mean,
    std, runs) per row. A row's true std is at least its sampling floor σ0, so (runs - 1)·s²/σ0² is at
    least a chi² with runs - 1 degrees of freedom: its lower tail at the printed std is that row's p-value,
    and Fisher's method (scipy's combine_pvalues) joins the rows'. A small value says the runs shared
    their scored pairs (one test or validation set); rows with fewer than 2 runs or no floor are skipped."""
    pvalues = []
    for mean, std, runs in figures:
        floor = sampling_floor(mean, n_pairs, pool_fraction=pool_fraction)
        if runs >= 2 and floor > 0.0:
            pvalues.append(float(_scipy_stats().chi2.cdf((runs - 1) * (std / floor) ** 2, runs - 1)))
    if not pvalues:
        return math.nan
    return float(_scipy_stats().combine_pvalues(pvalues, method="fisher").pvalue)


def gap_in_standard_errors(mean: Summary, published: float, *, published_error: float, set_error: float) -> float:
    """(ours - published) over its standard error, counting ours (std/sqrt(n)), the published mean's own
    (`published_error`: its printed std over the square root of its runs, the training noise its runs
    averaged) and its `set_error`: the sampling error of the one pair set its runs shared, which its std
    leaves out. A row whose runs disagreed widely (report 004's 70.31 ± 12.40 %) is so judged no closer
    than its own runs allow."""
    if mean.n < 2 or not math.isfinite(mean.std):
        return math.nan
    return (mean.mean - published) / math.sqrt(mean.std**2 / mean.n + published_error**2 + set_error**2)


def _finite_or_none(value: float | int) -> float | int | None:
    """JSON has no nan or inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _scipy_stats() -> Any:
    """scipy.stats, imported when a statistic is first computed: it costs half a second, which a command
    that only prints stored results (`search show`, `--help`) need not pay."""
    import scipy.stats

    return scipy.stats
