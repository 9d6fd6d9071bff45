"""How far a model's shear moduli can be trusted at a pass/fail threshold, and a linear calibration of them.

A model's G_VRH is compared with DFT (Materials Project PBE) values: mean absolute error, Spearman rank
correlation, median signed error (model - DFT; negative: the model is softer), and the confusion matrix of
the verdict ``G >= threshold`` (model verdict against DFT verdict). The calibration
``G_DFT ~ a * G_model + b`` is a least-squares line; :func:`cross_validated` predicts each material from a
line fitted on the other folds only, so its metrics are not those of the line's own training data.

Pure numpy/scipy; moduli in GPa.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

from coatflow.workflows.analysis import AnalysisError


@dataclass(frozen=True)
class Confusion:
    """Model verdict against DFT verdict at one threshold (pass: G >= threshold)."""

    both_pass: int  #: DFT passes, model passes
    false_fail: int  #: DFT passes, model fails (a good coating lost)
    false_pass: int  #: DFT fails, model passes (a soft coating let through)
    both_fail: int  #: DFT fails, model fails

    @property
    def wrong(self) -> int:
        return self.false_fail + self.false_pass

    @property
    def total(self) -> int:
        return self.both_pass + self.false_fail + self.false_pass + self.both_fail

    def text(self) -> str:
        """One line: 'pass/pass 10, DFT pass model fail 3, DFT fail model pass 0, fail/fail 25 (3 wrong of 38)'."""
        return (f"pass/pass {self.both_pass}, DFT pass model fail {self.false_fail}, DFT fail model pass "
                f"{self.false_pass}, fail/fail {self.both_fail} ({self.wrong} wrong of {self.total})")


@dataclass(frozen=True)
class ShearMetrics:
    """A model's G_VRH against DFT over one set of materials."""

    n: int
    mae: float  #: GPa
    spearman: float
    median_signed_error: float  #: GPa, model - DFT
    confusion: Confusion


def _pair(g_dft, g_model) -> tuple[np.ndarray, np.ndarray]:
    dft, model = np.asarray(g_dft, dtype=float), np.asarray(g_model, dtype=float)
    if dft.shape != model.shape or dft.ndim != 1:
        raise AnalysisError(f"DFT and model moduli must be two lists of the same length ({dft.shape} vs {model.shape})")
    if len(dft) < 2 or not (np.isfinite(dft).all() and np.isfinite(model).all()):
        raise AnalysisError("at least two finite (DFT, model) pairs are needed")
    return dft, model


def confusion(g_dft, g_model, threshold: float) -> Confusion:
    """The confusion matrix of ``G >= threshold`` (model against DFT)."""
    dft, model = _pair(g_dft, g_model)
    d, m = dft >= threshold, model >= threshold
    return Confusion(both_pass=int((d & m).sum()), false_fail=int((d & ~m).sum()),
                     false_pass=int((~d & m).sum()), both_fail=int((~d & ~m).sum()))


def shear_metrics(g_dft, g_model, threshold: float) -> ShearMetrics:
    """MAE, Spearman rho, median signed error (model - DFT) and the confusion matrix at ``threshold``."""
    dft, model = _pair(g_dft, g_model)
    return ShearMetrics(n=len(dft), mae=float(np.mean(np.abs(model - dft))),
                        spearman=float(spearmanr(dft, model).statistic),
                        median_signed_error=float(np.median(model - dft)),
                        confusion=confusion(dft, model, threshold))


def linear_fit(g_model, g_dft) -> tuple[float, float]:
    """(a, b) of the least-squares line ``G_DFT ~ a * G_model + b``."""
    dft, model = _pair(g_dft, g_model)
    if np.ptp(model) == 0:
        raise AnalysisError("every model modulus is the same: no line can be fitted")
    a, b = np.polyfit(model, dft, 1)
    return float(a), float(b)


def fold_indices(n: int, k: int, seed: int = 0) -> list[np.ndarray]:
    """``k`` disjoint folds covering ``range(n)``, from a seeded shuffle (sizes differ by at most one)."""
    if not 2 <= k <= n:
        raise AnalysisError(f"k-fold cross-validation needs 2 <= k <= n (k = {k}, n = {n})")
    return [np.sort(f) for f in np.array_split(np.random.default_rng(seed).permutation(n), k)]


def cross_validated(g_dft, g_model, k: int = 5, seed: int = 0) -> np.ndarray:
    """Each material's calibrated G from the line fitted on the other ``k - 1`` folds (out-of-fold predictions)."""
    dft, model = _pair(g_dft, g_model)
    out = np.empty_like(dft)
    for fold in fold_indices(len(dft), k, seed):
        train = np.setdiff1d(np.arange(len(dft)), fold)
        if len(train) < 2:
            raise AnalysisError(f"a fold leaves fewer than two materials to fit on (n = {len(dft)}, k = {k})")
        a, b = linear_fit(model[train], dft[train])
        out[fold] = a * model[fold] + b
    return out
