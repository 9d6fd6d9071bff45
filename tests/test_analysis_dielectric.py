"""Static dielectric tensor from its ingredients (workflows/analysis/dielectric.py): the ionic sum on analytic
cases, the acoustic sum rules, the electronic tensor from longitudinal directions."""

from __future__ import annotations

import numpy as np
import pytest

from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.analysis.dielectric import (E2, asr_born_charges, asr_force_constants,
                                                    electronic_tensor_from_directions, ionic_dielectric)

FOUR_PI_E2 = 4 * np.pi * E2  # eV Å


def _diatomic(k_axes, z_axes):
    """Rock-salt-like pair: spring k_a (eV/Å^2) and Born charges +-Z_a along each axis."""
    k = np.diag(k_axes)
    fc = np.block([[k, -k], [-k, k]])
    z = np.diag(z_axes)
    return np.array([z, -z]), fc


# -- the ionic sum on analytic cases ----------------------------------------------------------------------


def test_ionic_sum_diatomic_is_analytic_and_mass_independent():
    # one optical mode per axis, Zm = Z/sqrt(mu), omega^2 = k/mu: eps_ion = 4 pi e^2 Z^2 / (Omega k)
    born, fc = _diatomic([1.0, 2.0, 4.0], [1.0, 1.5, 2.0])
    vol = 20.0
    expected = FOUR_PI_E2 / vol * np.array([1.0, 1.5 ** 2 / 2.0, 2.0 ** 2 / 4.0])
    for masses in ([1.0, 1.0], [6.94, 19.0], [100.0, 3.0]):
        out = ionic_dielectric(born, fc, masses, vol)
        assert np.allclose(out["eps_ionic"], np.diag(expected), rtol=1e-10, atol=1e-12)
        assert out["acoustic"] == [0, 1, 2]
        assert np.allclose(out["frequencies"][:3], 0.0, atol=1e-3)
        mu = masses[0] * masses[1] / sum(masses)
        # hbar sqrt(k/mu) with k in eV/Å^2 and mu in amu: 521.47 cm^-1 per sqrt(eV/(Å^2 amu))
        assert np.allclose(sorted(out["frequencies"][3:]), 521.4709 * np.sqrt(np.array([1.0, 2.0, 4.0]) / mu),
                           rtol=1e-5)


def test_ionic_sum_lif_experiment():
    # LiF: Z* = 1.05, omega_TO = 306 cm^-1, a = 4.03 Å -> eps_0 - eps_inf = 9.0 - 1.96 = 7.04 (exp.)
    masses = [6.94, 19.00]
    mu = masses[0] * masses[1] / sum(masses)
    k = mu * (306.0 / 521.4709) ** 2
    born, fc = _diatomic([k] * 3, [1.05] * 3)
    out = ionic_dielectric(born, fc, masses, 4.03 ** 3 / 4)
    assert np.allclose(np.diag(out["eps_ionic"]), 6.97, atol=0.01)
    assert np.allclose(out["frequencies"][3:], 306.0)


def test_acoustic_sum_rules_are_imposed():
    born, fc = _diatomic([1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    noisy_born = born + 0.03  # same offset on every atom
    fixed, violation = asr_born_charges(noisy_born)
    assert violation == pytest.approx(0.06)
    assert np.allclose(fixed, born)
    rng = np.random.default_rng(0)
    noisy_fc = asr_force_constants(fc + 0.01 * rng.normal(size=fc.shape))
    assert np.allclose(noisy_fc, noisy_fc.T)
    assert np.allclose(noisy_fc.reshape(2, 3, 2, 3).sum(axis=2), 0.0, atol=1e-12)  # rigid shifts cost nothing
    out = ionic_dielectric(fixed, noisy_fc, [6.94, 19.0], 16.0)
    assert np.allclose(out["frequencies"][out["acoustic"]], 0.0, atol=1e-3)


def test_unstable_or_malformed_input_is_a_one_line_error():
    born, fc = _diatomic([1.0, -1.0, 1.0], [1.0, 1.0, 1.0])
    with pytest.raises(AnalysisError, match="omega\\^2 <= 0") as err:
        ionic_dielectric(born, fc, [1.0, 1.0], 10.0)
    assert "\n" not in str(err.value)
    with pytest.raises(AnalysisError, match="do not fit"):
        ionic_dielectric(born[:1], fc, [1.0, 1.0], 10.0)


def test_tensor_from_longitudinal_directions():
    eps = np.array([[2.0, 0.3, -0.1], [0.3, 2.5, 0.2], [-0.1, 0.2, 3.0]])
    assert np.allclose(electronic_tensor_from_directions(lambda d: d @ eps @ d / (d @ d)), eps)
