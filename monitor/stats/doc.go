// Package stats holds the pure statistics behind vane's drift monitor: the
// two-sample Kolmogorov–Smirnov test, quantile binning, the population
// stability index, the Jensen–Shannon distance, the normalised Wasserstein
// distance, the chi-square test of a 2×K contingency table and the
// multiple-testing corrections applied across the features of a model.
//
// Every function is pure: no I/O, no state, inputs are never modified.
// Samples passed to KS and Wasserstein must be sorted ascending and free of
// NaN (callers sort once per window and reuse the slice); proportions and
// counts must be non-negative.
//
// # Conventions: which number matches which tool
//
//   - KS matches scipy.stats.ks_2samp(ref, live, alternative="two-sided",
//     method="auto"). D is max |F_ref − F_live| over the pooled values (ties
//     handled by evaluating both empirical CDFs after all equal values).
//     The p-value switch is scipy's: when max(len(ref), len(live)) ≤ 10000
//     (scipy's MAX_AUTO_N) the p-value is exact, P(D_{m,n} ≥ d) counted over
//     lattice paths — Hodges' "outside the square" series when m = n, the
//     Viehmann recursion for 1 − p ("inside method") otherwise. Above 10000,
//     or if the exact value is not a probability (scipy's failure case), it
//     is asymptotic: kstwo.sf(d, round(m·n/(m+n))), the exact one-sample
//     Kolmogorov distribution with n = round-half-even(en) — not the
//     limiting Q(√en·d). kstwo.sf itself follows scipy's Simard–L'Ecuyer
//     selection (Ruben–Gambino closed forms at the ends, Durbin's matrix
//     in the Marsaglia–Tsang–Wang form, Pelz–Good, and 2·Smirnov's
//     one-sided tail). The one departure: for n ≤ 140 and 0.754693 < n·d²
//     ≤ 4 scipy uses Pomeranz's recursion where this package uses Durbin's
//     matrix; both are exact algorithms and agree to rounding.
//     With the product defaults (reference 1000, window 500) the exact
//     branch always applies.
//   - KolmogorovQ is scipy.special.kolmogorov: the limiting survival
//     function Q(λ) = 2 Σ_{k≥1} (−1)^(k−1) exp(−2k²λ²).
//   - Edges equals np.unique(np.quantile(ref, np.arange(1, bins)/bins)),
//     numpy's default "linear" quantile; bins are right-closed,
//     (−∞, e0], (e0, e1], …, (e_last, +∞), as np.digitize(x, edges,
//     right=True) and pandas.cut.
//   - PSI is Evidently's psi: Σ (live − ref)·ln(live/ref) over proportions,
//     a zero proportion on either side replaced by 1e-4, no renormalisation.
//   - JS is scipy.spatial.distance.jensenshannon(ref, live, base=2): the
//     distance √JSD, inputs normalised to sum 1, so 0 ≤ JS ≤ 1.
//   - Wasserstein is Evidently's wasserstein_distance_norm:
//     scipy.stats.wasserstein_distance(ref, live) / max(np.std(ref), 0.001).
//   - Chi2 is scipy.stats.chi2_contingency on [ref counts; live counts]
//     after dropping categories empty on both sides; Yates' correction only
//     when dof = 1.
//   - BonferroniAdjust is statsmodels multipletests(method="bonferroni");
//     BHAdjust is scipy.stats.false_discovery_control(method="bh"). A
//     p-value is significant when its adjusted value is strictly below
//     alpha, so the alert decision and the reported adjusted p never
//     disagree.
//
// # Sequential detection
//
//   - Pearson is Pearson's chi-square of homogeneity on a 2×K table without
//     continuity correction (equal to Chi2 when dof > 1).
//   - KSAsymptotic is ks_2samp(method="asymp"); KSExactCheap says when the
//     monitor affords the exact p-value.
//   - Moments accumulates exact, mergeable count, mean and central moments
//     (Welford, Pébay).
//   - CUSUMRate and CUSUMThreshold calibrate one-sided CUSUMs on
//     standardized statistics whose windows share a reference (Siegmund's
//     approximation of the average run length, integrated over the
//     reference's error); ZFromP, NormalSF and VarianceRatioZ standardize.
//
// # Edge cases
//
// Functions return "no evidence" rather than NaN where a result is
// undefined, so results stay JSON-encodable: KS of an empty sample is (0, 1);
// Chi2 of a table with fewer than two categories or an empty row is (0, 1);
// JS with no mass on a side is 0; Wasserstein of an empty sample is 0.
// Slices that must pair up (PSI, JS, Chi2) panic when their lengths differ,
// as gonum's do: that is a programming error, not a data condition.
package stats
