"""Defect thermodynamics without a calculator: formation energies, carriers, charge neutrality, mu limits.

Conventions: E_F is measured from the bulk VBM (eV); a formation energy is
``E_f(q, E_F, mu) = e0 + q E_F - sum_i dn_i dmu_i`` with ``e0`` at E_F = 0 and dmu = 0, ``dn_i`` atoms
added. Concentrations are per cm^3. ``mu_li`` is mu_Li - mu_Li(bcc Li); the Li potential vs Li/Li+
is V = -mu_li / e, so dE_F/dV = -dE_F/dmu_Li.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq, linprog
from scipy.special import logsumexp

from coatflow.workflows.errors import CoatflowError

K_B = 8.617333262e-5  # eV/K
A3_TO_CM3 = 1e-24


@dataclass(frozen=True)
class ChargedDefect:
    """One defect in one charge state, as the solver needs it."""

    name: str
    charge: int
    e0: float  # eV, formation energy at E_F = VBM and dmu = 0
    dn: dict[str, int] = field(default_factory=dict)
    sites_per_cm3: float = 1e22

    def formation_energy(self, fermi_level: float, dmu: dict[str, float]) -> float:
        return self.e0 + self.charge * fermi_level - sum(n * dmu.get(el, 0.0) for el, n in self.dn.items())

    def log_concentration(self, fermi_level: float, dmu: dict[str, float], temperature: float) -> float:
        return np.log(self.sites_per_cm3) - self.formation_energy(fermi_level, dmu) / (K_B * temperature)


@dataclass(frozen=True)
class BandDos:
    """Bulk eigenvalues (eV, VBM = 0) on a k-mesh, split into valence and conduction bands."""

    valence: np.ndarray  # (n_states,)
    conduction: np.ndarray
    weights_v: np.ndarray  # electrons per state per cm^3 when fully occupied
    weights_c: np.ndarray

    @property
    def gap(self) -> float:
        return float(self.conduction.min() - self.valence.max())

    @classmethod
    def from_eigenvalues(cls, eigenvalues, k_weights, n_electrons: float, volume: float, nspins: int = 1,
                         vbm: float | None = None) -> BandDos:
        """From eigenvalues [spin][k][band] of a cell of ``volume`` Å^3 holding ``n_electrons`` (insulator)."""
        e = np.asarray(eigenvalues, dtype=float)
        w = np.asarray(k_weights, dtype=float)
        if e.ndim != 3 or e.shape[1] != len(w):
            raise CoatflowError("eigenvalues must be [spin][k][band] with one weight per k-point")
        n_val = int(round(n_electrons * nspins / 2))  # bands filled per spin channel
        if abs(n_val * 2 / nspins - n_electrons) > 1e-6 or n_val >= e.shape[2]:
            raise CoatflowError("bulk cell is not a closed-shell insulator with empty bands; no carrier DOS")
        occ = (2.0 / nspins) / (w.sum() * volume * A3_TO_CM3)  # per state
        val, con = e[:, :, :n_val], e[:, :, n_val:]
        ref = float(val.max()) if vbm is None else vbm
        wv = np.broadcast_to(w[None, :, None] * occ, val.shape)
        wc = np.broadcast_to(w[None, :, None] * occ, con.shape)
        return cls(val.ravel() - ref, con.ravel() - ref, wv.ravel().copy(), wc.ravel().copy())

    def log_electrons(self, fermi_level: float, temperature: float) -> float:
        x = (self.conduction - fermi_level) / (K_B * temperature)
        return float(logsumexp(np.log(self.weights_c) - np.logaddexp(0.0, x)))

    def log_holes(self, fermi_level: float, temperature: float) -> float:
        x = (fermi_level - self.valence) / (K_B * temperature)
        return float(logsumexp(np.log(self.weights_v) - np.logaddexp(0.0, x)))


def _log_charges(defects, dos, fermi_level, dmu, temperature) -> tuple[float, float]:
    """log of total positive and total negative charge density (|e| cm^-3)."""
    pos, neg = [-np.inf], [-np.inf]
    for d in defects:
        if d.charge:
            lc = d.log_concentration(fermi_level, dmu, temperature) + np.log(abs(d.charge))
            (pos if d.charge > 0 else neg).append(lc)
    if dos is not None:
        pos.append(dos.log_holes(fermi_level, temperature))
        neg.append(dos.log_electrons(fermi_level, temperature))
    return float(logsumexp(pos)), float(logsumexp(neg))


def solve_fermi_level(defects, dmu: dict[str, float], temperature: float, dos: BandDos | None = None,
                      bounds: tuple[float, float] | None = None) -> float:
    """E_F (eV above the VBM) where positive and negative charges balance.

    The balance is found on log(positive) - log(negative), which decreases monotonically with E_F.
    """
    if temperature <= 0:
        raise CoatflowError(f"temperature must be positive (K), got {temperature}")
    defects = list(defects)
    if not any(d.charge > 0 for d in defects) and dos is None or not any(d.charge < 0 for d in defects) and dos is None:
        raise CoatflowError("charge neutrality needs positive and negative species (defects or carriers)")
    if bounds is None:
        gap = dos.gap if dos is not None else 0.0
        bounds = (-3.0, gap + 3.0)

    def f(ef):
        lp, ln = _log_charges(defects, dos, ef, dmu, temperature)
        return lp - ln

    lo, hi = bounds
    for _ in range(8):  # widen until the balance is bracketed
        if f(lo) > 0 > f(hi):
            break
        lo, hi = lo - 5.0, hi + 5.0
    else:
        raise CoatflowError("no Fermi level balances the charges in the search range")
    return float(brentq(f, lo, hi, xtol=1e-9))


def concentrations(defects, dmu: dict[str, float], fermi_level: float, temperature: float,
                   dos: BandDos | None = None) -> dict[str, float]:
    """cm^-3 per 'name q' (q signed), plus 'electrons' and 'holes' when a DOS is given."""
    out = {f"{d.name} {d.charge:+d}": float(np.exp(d.log_concentration(fermi_level, dmu, temperature)))
           for d in defects}
    if dos is not None:
        out["electrons"] = float(np.exp(dos.log_electrons(fermi_level, temperature)))
        out["holes"] = float(np.exp(dos.log_holes(fermi_level, temperature)))
    return out


def fermi_vs_mu(defects, dmu_of_mu_li, mu_li_grid, temperature: float, dos: BandDos | None = None) -> list[dict]:
    """Charge neutrality on a grid of mu_Li; ``dmu_of_mu_li(mu)`` gives every dmu_i at that mu_Li."""
    out = []
    for mu in mu_li_grid:
        dmu = dmu_of_mu_li(mu)
        ef = solve_fermi_level(defects, dmu, temperature, dos)
        conc = concentrations(defects, dmu, ef, temperature, dos)
        out.append({"mu_li": float(mu), "dmu": dmu, "fermi_level": ef, "concentrations": conc})
    return out


def dominant_species(conc: dict[str, float], charges: dict[str, int]) -> list[str]:
    """The largest positive and the largest negative charge carrier (defect or free carrier)."""
    pos = {k: v * charges[k] for k, v in conc.items() if charges.get(k, 0) > 0}
    neg = {k: -v * charges[k] for k, v in conc.items() if charges.get(k, 0) < 0}
    return [max(d, key=d.get) for d in (pos, neg) if d]


def slope_regimes(mu, ef, tol: float = 0.05) -> list[dict[str, float]]:
    """Contiguous ranges of mu_Li where dE_F/dmu_Li is constant within ``tol``."""
    mu, ef = np.asarray(mu, float), np.asarray(ef, float)
    if len(mu) < 2:
        return []
    s = np.diff(ef) / np.diff(mu)
    regimes, start = [], 0
    for i in range(1, len(s) + 1):
        if i == len(s) or abs(s[i] - np.mean(s[start:i])) > tol:
            regimes.append({"mu_li_from": float(mu[start]), "mu_li_to": float(mu[i]),
                            "slope": round(float(np.mean(s[start:i])), 4)})
            start = i
    return regimes


# -- chemical potentials -------------------------------------------------------------------------


def host_dmu_at(pd, host, dmu_li: float, li: str = "Li") -> dict[str, float]:
    """dmu_i (eV, vs the phase diagram's elemental references) keeping ``host`` stable at ``dmu_li``.

    With more than one free element the point farthest from every competing phase's limit is taken
    (largest minimum slack); for a binary host the host's own energy fixes it exactly.
    """
    from pymatgen.core import Composition

    host = Composition(host)
    els = [el.symbol for el in pd.elements]
    free = [e for e in els if e != li]
    if li not in els:
        raise CoatflowError(f"phase diagram {'-'.join(els)} has no Li")
    nfree = len(free)

    def row(c):
        return np.array([c[e] for e in free], float), c[li]

    e_host = _formation_per_fu(pd, host)
    a_eq, li_eq = row(host)
    a_ub, b_ub = [], []
    for entry in pd.stable_entries:
        c = entry.composition
        if c.reduced_formula == host.reduced_formula or c.is_element and c.elements[0].symbol == li:
            continue
        coeffs, n_li = row(c)
        a_ub.append(np.append(coeffs, 0.0))
        b_ub.append(pd.get_form_energy(entry) - n_li * dmu_li)
    # maximise t: sum_i n_i dmu_i + t * |row| <= dH_j ; host equality; dmu_i <= 0
    a_ub = np.array(a_ub) if a_ub else np.zeros((0, nfree + 1))
    for k in range(len(a_ub)):
        a_ub[k, -1] = np.linalg.norm(a_ub[k, :-1]) or 1.0
    upper = np.hstack([np.eye(nfree), np.ones((nfree, 1))])
    a_ub = np.vstack([a_ub, upper]) if len(a_ub) else upper
    b_ub = np.concatenate([b_ub, np.zeros(nfree)])
    res = linprog(np.append(np.zeros(nfree), -1.0), A_ub=a_ub, b_ub=b_ub,
                  A_eq=[np.append(a_eq, 0.0)], b_eq=[e_host - li_eq * dmu_li],
                  bounds=[(None, None)] * nfree + [(-1e-3, None)], method="highs")  # the limits are rounded
    if not res.success:
        raise CoatflowError(f"{host.reduced_formula} is not stable at dmu_Li = {dmu_li:.3f} eV")
    return {li: float(dmu_li), **{e: float(x) for e, x in zip(free, res.x[:nfree])}}


def _formation_per_fu(pd, comp) -> float:
    """Formation energy (eV) of ``comp`` as written, from the hull (so metastable hosts sit on it)."""
    return float(pd.get_hull_energy(comp) - sum(comp[el] * pd.el_refs[el].energy_per_atom for el in comp.elements))
