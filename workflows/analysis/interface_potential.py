"""Interface potential model for Li | solid electrolyte | cathode stacks (Swift et al.,
"Predicting low-impedance interfaces for solid-state batteries").

Conventions (docs/potential_maps.md):
- energies in eV relative to the Fermi level of the Li anode; potentials in V with φ_Li = 0;
- μ_Li in eV relative to bcc Li (≤ 0 inside a cathode: μ_Li = −e·OCV); U = −μ_Li/e is the voltage;
- E_F(μ_Li) is the electrolyte's equilibrium Fermi level above its VBM (defect stage);
- open-circuit equilibrium, μ̃_Li+ = 0 everywhere, so the electron electrochemical potential equals μ_Li;
- eφ = E_F − IP + ψ_a − μ_Li (ψ_a the Li work function); VBM = μ_Li − E_F; CBM = VBM + E_g;
- a positive Δφ is a barrier to discharge (Li+ moving anode -> cathode climbs it), a negative one a barrier to charge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from coatflow.workflows.analysis import AnalysisError


@dataclass
class Electrolyte:
    formula: str
    ionization_potential: float  #: eV, vacuum minus bulk-aligned VBM
    band_gap: float  #: eV
    reduction_limit: float  #: V vs Li/Li+, lower end of the stability window
    oxidation_limit: float  #: V vs Li/Li+, upper end
    fermi_level: Callable[[float], float]  #: μ_Li (eV) -> E_F above the VBM (eV)

    def __post_init__(self):
        if self.oxidation_limit < self.reduction_limit:
            raise AnalysisError(f"{self.formula}: stability window {self.reduction_limit:.2f}–"
                                f"{self.oxidation_limit:.2f} V is empty (oxidation limit below reduction limit)")

    @property
    def mu_max(self) -> float:
        return -self.reduction_limit

    @property
    def mu_min(self) -> float:
        return -self.oxidation_limit


@dataclass
class Cathode:
    formula: str
    state_of_charge: float  #: fraction of Li removed
    ocv: float  #: V vs Li/Li+ at this state of charge
    work_function: float  #: eV, vacuum level minus the cathode Fermi level


def tabulated_fermi_level(mu_li, fermi_level, formula: str = "electrolyte") -> Callable[[float], float]:
    """E_F(μ_Li) by linear interpolation of a computed grid; μ_Li outside the grid is an error."""
    mu, ef = np.asarray(mu_li, float), np.asarray(fermi_level, float)
    if mu.size < 2 or mu.shape != ef.shape:
        raise AnalysisError(f"{formula}: E_F(mu_Li) needs at least two matching points")
    order = np.argsort(mu)
    mu, ef = mu[order], ef[order]

    def fermi(m: float) -> float:
        if m < mu[0] - 1e-6 or m > mu[-1] + 1e-6:
            raise AnalysisError(f"{formula}: E_F(mu_Li) was computed for mu_Li in [{mu[0]:.3f}, {mu[-1]:.3f}] eV, "
                                f"not at {m:.3f} eV")
        return float(np.interp(m, mu, ef))

    return fermi


def electrostatic_potential(se: Electrolyte, mu_li: float, li_work_function: float) -> float:
    """φ (V) inside the electrolyte where its Li chemical potential is ``mu_li``."""
    return se.fermi_level(mu_li) - se.ionization_potential + li_work_function - mu_li


def classify_barrier(dphi: float, low: float = 0.1, high: float = 0.4) -> str:
    size = abs(dphi)
    if size < low:
        return "barrier-less"
    kind = "low" if size <= high else "high"
    return f"{kind} barrier to {'discharge' if dphi > 0 else 'charge'}"


def stack_potentials(li_work_function: float, se: Electrolyte, cathode: Cathode, n_points: int = 41,
                     barrier_low: float = 0.1, barrier_high: float = 0.4) -> dict:
    """Profiles and interface jumps of one Li | electrolyte | cathode stack at open circuit.

    Minimum-interface assumption: inside the electrolyte μ_Li changes from the anode's value (0) towards the
    cathode's (−e·OCV) only as far as the window allows; what lies outside the window drops at the interfaces.
    The profiles are tabulated against μ_Li from 0 to −e·OCV; points outside the window (the "grey" regions,
    which the interfaces take up) carry None for the electrolyte's φ and band edges.
    """
    if n_points < 2:
        raise AnalysisError("potential_maps.n_points must be at least 2")
    mu_cathode = -cathode.ocv
    mu_se_anode = float(np.clip(0.0, se.mu_min, se.mu_max))
    mu_se_cathode = float(np.clip(mu_cathode, se.mu_min, se.mu_max))
    phi_se_anode = electrostatic_potential(se, mu_se_anode, li_work_function)
    phi_se_cathode = electrostatic_potential(se, mu_se_cathode, li_work_function)
    # cathode: electron level μ_Li = −e·OCV, vacuum level W_c above it; Li anode vacuum level at ψ_a (φ = 0)
    phi_cathode = li_work_function - cathode.work_function - mu_cathode
    d_phi_anode = phi_se_anode - 0.0
    d_phi_cathode = phi_cathode - phi_se_cathode

    def edges(mu):
        vbm = mu - se.fermi_level(mu)
        return vbm, vbm + se.band_gap

    vbm_a, cbm_a = edges(mu_se_anode)
    vbm_c, cbm_c = edges(mu_se_cathode)
    grid = np.linspace(0.0, mu_cathode, n_points) if mu_cathode != 0 else np.zeros(1)
    grid = np.unique(np.concatenate([grid, [mu_se_anode, mu_se_cathode]]))[::-1]  # anode (0) first
    profile = {"mu_li": [], "voltage": [], "region": [], "phi": [], "vbm": [], "cbm": [], "electron_level": []}
    for mu in grid:
        inside = mu_se_cathode - 1e-9 <= mu <= mu_se_anode + 1e-9
        region = "electrolyte" if inside else ("anode interface" if mu > mu_se_anode else "cathode interface")
        profile["mu_li"].append(float(mu))
        profile["voltage"].append(float(-mu) + 0.0)
        profile["region"].append(region)
        profile["electron_level"].append(float(mu))
        if inside:
            vbm, cbm = edges(mu)
            profile["phi"].append(electrostatic_potential(se, mu, li_work_function))
            profile["vbm"].append(vbm)
            profile["cbm"].append(cbm)
        else:
            for k in ("phi", "vbm", "cbm"):
                profile[k].append(None)
    flags = []
    if cbm_a < 0:
        flags.append(f"{se.formula} CBM {cbm_a:.2f} eV below the Li Fermi level at the anode: reduced by Li")
    if vbm_c > mu_cathode:
        flags.append(f"{se.formula} VBM {vbm_c:.2f} eV above the cathode's electron level: oxidised by the cathode")
    return {
        "mu_li_anode": 0.0, "mu_li_cathode": mu_cathode,
        "mu_li_electrolyte": [mu_se_anode, mu_se_cathode],
        "grey_anode": 0.0 - mu_se_anode, "grey_cathode": mu_se_cathode - mu_cathode,
        "phi_li": 0.0, "phi_electrolyte_anode": phi_se_anode, "phi_electrolyte_cathode": phi_se_cathode,
        "phi_cathode": phi_cathode,
        "delta_phi_anode": d_phi_anode, "delta_phi_cathode": d_phi_cathode,
        "barrier_anode": classify_barrier(d_phi_anode, barrier_low, barrier_high),
        "barrier_cathode": classify_barrier(d_phi_cathode, barrier_low, barrier_high),
        "band_edges": {"anode_side": {"vbm": vbm_a, "cbm": cbm_a}, "cathode_side": {"vbm": vbm_c, "cbm": cbm_c}},
        "vacuum_level_li": li_work_function,
        "flags": flags,
        "profile": profile,
    }
