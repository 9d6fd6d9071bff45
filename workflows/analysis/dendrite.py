"""Li deposition under a solid layer (electrolyte or coating): a 2D plane-strain finite-element model of how
the layer's shear modulus flattens or sharpens Li nuclei (docs/dendrite.md has every equation and source).

The Li surface y = h(x) is periodic in x (period ``period``, one triangular cap ``cap_width`` wide per
period, i.e. a row of identical caps). Each time step:

1. the meshes are mapped to the current surface (structured quadrilaterals, graded towards the surface):
   the layer {h(x) < y < mean(h) + layer_thickness} and the Li slab {mean(h) - li_depth < y < h(x)};
2. ionic potential in the layer: sigma * laplace(phi) = 0, the applied current density entering at the far
   side and the deposition current density i(x) leaving through the Li surface (scikit-fem, Q1 elements);
3. mechanics (Monroe & Newman 2005 as generalised by Ahmad & Viswanathan 2017): the roughness
   delta(x) = h(x) - mean(h) is Li grown into the gap between the two solids; plane-strain linear elasticity in
   the layer (G, nu) and in the Li (G_Li, nu_Li), each clamped at its far side, gives each solid's interface
   stiffness S_s, S_Li (Schur complements of the FE stiffness matrices onto the surface's vertical
   displacements, built on the mapped meshes). The reaction's mechanical free-energy change is Ahmad &
   Viswanathan's isotropic closed form (their pressure term weighted by (V_m - V_Li+)/2, their deviatoric term
   by (V_m + V_Li+)/2), rewritten through the two half-space stiffnesses so that the FE operators carry it:
   exact for a flat interface, the FE geometry on a curved one (``mechanical_operator``);
4. Butler-Volmer kinetics with the reaction driving force shifted by
   dmu = dmu_mech + (V_m + V_Li+)/2 * gamma * kappa   (J/mol; > 0 opposes deposition),
   i = i0 * [exp(-alpha f (eta + dmu/F)) - exp((1 - alpha) f (eta + dmu/F))], eta = Phi_Li - phi_e, f = F/RT,
   with the Li potential Phi_Li set by the galvanostatic condition (integral of i over the surface = i_app * W);
   ``kinetics="exchange"`` puts dmu into the exchange current instead, i0 -> i0 exp(-(1 - alpha) dmu/RT) on both
   branches (which of the two the sources use was not verified: docs/dendrite.md, equation (5));
5. the surface moves along its normal at v_n = i V_m / F (dh/dt = v_n sqrt(1 + h_x^2)), backward Euler in h
   (Newton on h and Phi_Li, the stiffness operators and the potential of the step frozen), adaptive step.

Pure numpy/scipy/scikit-fem, SI units throughout.
"""

from __future__ import annotations

import math
import time as _time
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from coatflow.workflows.analysis import AnalysisError

FARADAY = 96485.33212  # C/mol
GAS_CONSTANT = 8.314462618  # J/(mol K)


@dataclass(frozen=True)
class DendriteParams:
    """Every parameter of the model, SI units (sources in docs/dendrite.md)."""

    shear_modulus: float = 8.0e9  # Pa, the layer's G (LGPS ~ 8 GPa)
    poisson: float = 0.3  # the layer's Poisson ratio
    li_shear_modulus: float = 3.4e9  # Pa, polycrystalline Li (Monroe & Newman 2005)
    li_poisson: float = 0.42  # Li (Monroe & Newman 2005)
    molar_volume: float = 13.0e-6  # m^3/mol, Li metal
    surface_energy: float = 0.5  # J/m^2, Li surface energy
    exchange_current: float = 10.0  # A/m^2 (1 mA/cm^2)
    transfer_coefficient: float = 0.5  # symmetric Butler-Volmer (the only value implemented)
    conductivity: float = 1.2  # S/m, the layer's ionic conductivity (LGPS 12 mS/cm)
    current_density: float = 1.0  # A/m^2 applied (0.1 mA/cm^2)
    temperature: float = 298.15  # K
    cap_width: float = 10e-9  # m, base width of each triangular cap
    cap_height: float = 2.5e-9  # m
    cap_rounding: float = 1.0e-9  # m, corners of the triangle rounded over this length
    period: float = 20e-9  # m, cap spacing (the periodic cell)
    layer_thickness: float = 40e-9  # m, modelled layer above the mean surface
    li_depth: float = 40e-9  # m, modelled Li slab below the mean surface
    ion_volume_ratio: float = 0.04  # v = V_Li+ / V_m: Li+ partial molar volume in the layer over Li metal's
    mechanics: bool = True  # the elastic term of the driving force
    capillarity: bool = True  # the (V_m + V_Li+)/2 * gamma * kappa term
    # how dmu enters Butler-Volmer: "potential", a shift of the equilibrium potential by dmu/F (both branches,
    # opposite factors); "exchange", a factor exp(-(1 - alpha) dmu/RT) on the exchange current (both branches,
    # the same factor). docs/dendrite.md, equation (5): which one the sources use was not verified.
    kinetics: str = "potential"

    def check(self) -> None:
        """Raise AnalysisError naming the first unphysical parameter."""
        for name in ("shear_modulus", "li_shear_modulus", "molar_volume", "exchange_current", "conductivity",
                     "current_density", "temperature", "cap_width", "period", "layer_thickness", "li_depth"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise AnalysisError(f"dendrite model: {name} must be a positive number, got {v}")
        for name in ("poisson", "li_poisson"):
            v = getattr(self, name)
            if not (math.isfinite(v) and -1 < v < 0.5):
                raise AnalysisError(f"dendrite model: {name} must lie in (-1, 0.5), got {v}")
        if self.transfer_coefficient != 0.5:
            raise AnalysisError("dendrite model: only the symmetric transfer coefficient 0.5 is implemented "
                                "(the time step inverts Butler-Volmer in closed form)")
        if self.kinetics not in ("potential", "exchange"):
            raise AnalysisError(f"dendrite model: kinetics must be 'potential' or 'exchange', got {self.kinetics!r}")
        if not (math.isfinite(self.ion_volume_ratio) and self.ion_volume_ratio >= 0):
            raise AnalysisError(f"dendrite model: ion_volume_ratio must be >= 0, got {self.ion_volume_ratio}")
        if self.surface_energy < 0 or self.cap_height < 0:
            raise AnalysisError("dendrite model: surface_energy and cap_height must not be negative")
        if self.cap_width > self.period:
            raise AnalysisError(f"dendrite model: cap_width {self.cap_width} m is wider than the period {self.period} m")


@dataclass(frozen=True)
class Mesh:
    """Discretisation: nx surface nodes per period, ny element layers in each solid, grading exponent."""

    nx: int = 64
    ny: int = 16
    grading: float = 2.0

    def finer(self, factor: int = 2) -> Mesh:
        return replace(self, nx=self.nx * factor, ny=self.ny * factor)


@dataclass
class DendriteResult:
    """Outcome of one run. Heights are measured from the initial flat Li surface (the caps' base)."""

    params: DendriteParams
    mesh: Mesh
    x: np.ndarray  # m, surface nodes of one period
    times: list[float]  # s, snapshot times
    profiles: list[np.ndarray]  # m, h(x) at each snapshot time
    tip_height: float  # m, max h at the end
    valley_height: float  # m, min h at the end
    initial_amplitude: float  # m, max h - min h at t = 0
    amplitude: float  # m, max h - min h at the end
    mean_height: float  # m, mean h at the end (uniform growth: i V_m t / F)
    faraday_height: float  # m, i_app V_m t / F
    steps: int
    remaps: int  # how often the meshes were re-mapped to the surface
    wall_time: float  # s
    stopped: str | None = None  # why the run ended early, if it did
    history: list[tuple[float, float, float]] = field(default_factory=list)  # (t, tip, valley)

    @property
    def ratio(self) -> float:
        """Tip height / valley height at the end (1: flat; larger: rougher)."""
        return self.tip_height / self.valley_height if self.valley_height > 0 else math.inf

    def amplification_at(self, t: float) -> float:
        """Roughness amplification at time t (linear interpolation of the step history)."""
        h = np.array(self.history)
        if t > h[-1, 0]:
            return math.nan
        return float(np.interp(t, h[:, 0], h[:, 1] - h[:, 2]) / self.initial_amplitude)

    def time_to(self, fraction: float) -> float | None:
        """First time the peak-to-valley amplitude falls below ``fraction`` of its initial value, or None."""
        h = np.array(self.history)
        below = np.nonzero((h[:, 1] - h[:, 2]) < fraction * self.initial_amplitude)[0]
        return float(h[below[0], 0]) if len(below) else None

    @property
    def amplification(self) -> float:
        """Roughness amplification: peak-to-valley amplitude at the end / at the start (< 1: flattened)."""
        return self.amplitude / self.initial_amplitude if self.initial_amplitude > 0 else math.nan


# -- geometry and meshes -----------------------------------------------------------------------------------


def initial_surface(p: DendriteParams, x: np.ndarray) -> np.ndarray:
    """A flat surface at y = 0 with one triangular cap (base ``cap_width``, height ``cap_height``) per period,
    its corners rounded by a periodic Gaussian filter of standard deviation ``cap_rounding`` (a sharp corner is
    a stress singularity of linear elasticity and an infinite curvature)."""
    half = p.cap_width / 2
    h = np.maximum(0.0, p.cap_height * (1 - np.abs(x - p.period / 2) / half)) if half > 0 else 0 * x
    if p.cap_rounding > 0:
        k = 2 * np.pi * np.fft.fftfreq(len(x), d=x[1] - x[0])
        h = np.real(np.fft.ifft(np.fft.fft(h) * np.exp(-0.5 * (k * p.cap_rounding) ** 2)))
    return h


def _quad_mesh(x: np.ndarray, h: np.ndarray, far: float, ny: int, grading: float, above: bool):
    """A structured quad mesh between the surface (row 0) and the flat far side (row ny), graded to the surface.

    x has nx + 1 points (the last closes the period), h the surface height there.
    """
    from skfem import MeshQuad

    nxp = len(x)
    eta = (np.arange(ny + 1) / ny) ** grading
    X = np.tile(x, ny + 1)
    Y = (h[None, :] + (far - h[None, :]) * eta[:, None]).ravel()
    j, i = np.meshgrid(np.arange(ny), np.arange(nxp - 1), indexing="ij")
    n0 = (j * nxp + i).ravel()
    quads = np.array([n0, n0 + 1, n0 + nxp + 1, n0 + nxp])
    if not above:  # rows go downwards: keep counter-clockwise element orientation
        quads = quads[[0, 3, 2, 1]]
    return MeshQuad(np.array([X, Y]), quads)


def _periodic_map(nxp: int, ny: int) -> np.ndarray:
    """Full node -> reduced node: the last column of each row is the first column."""
    idx = np.arange((ny + 1) * nxp).reshape(ny + 1, nxp)
    red = idx.copy()
    red[:, -1] = idx[:, 0]
    uniq, inv = np.unique(red.ravel(), return_inverse=True)
    return inv


def _prolongation(full_to_red: np.ndarray, n_red: int) -> sp.csr_matrix:
    n = len(full_to_red)
    return sp.csr_matrix((np.ones(n), (np.arange(n), full_to_red)), shape=(n, n_red))


def interface_stiffness(x: np.ndarray, h: np.ndarray, far: float, ny: int, grading: float, shear: float,
                        poisson: float, above: bool) -> np.ndarray:
    """S (nx x nx, N/m per m of depth): vertical nodal reaction forces at the surface nodes for vertical
    surface displacements, the surface's horizontal displacement and the far side held at zero.

    Plane-strain linear elasticity on the mapped mesh, periodic in x; S is the Schur complement of the
    stiffness matrix onto the surface's vertical dofs.
    """
    from skfem import Basis, ElementQuad1, ElementVector
    from skfem.models.elasticity import lame_parameters, linear_elasticity

    nxp = len(x)
    nx = nxp - 1
    mesh = _quad_mesh(x, h, far, ny, grading, above)
    basis = Basis(mesh, ElementVector(ElementQuad1()))
    K = linear_elasticity(*lame_parameters(2 * shear * (1 + poisson), poisson)).assemble(basis)
    node_map = _periodic_map(nxp, ny)
    n_red = node_map.max() + 1
    dofs = basis.nodal_dofs  # (2, nnodes)
    red_dof = np.empty(K.shape[0], dtype=int)
    red_dof[dofs[0]] = 2 * node_map
    red_dof[dofs[1]] = 2 * node_map + 1
    P = _prolongation(red_dof, 2 * n_red)
    Kr = (P.T @ K @ P).tocsr()
    surf_nodes = node_map[:nx]  # row 0
    far_nodes = node_map[ny * nxp: ny * nxp + nx]
    b = 2 * surf_nodes + 1
    fixed = np.concatenate([2 * surf_nodes, 2 * far_nodes, 2 * far_nodes + 1, b])
    free = np.setdiff1d(np.arange(2 * n_red), fixed)
    Kff = Kr[free][:, free].tocsc()
    Kfb = Kr[free][:, b].toarray()
    X = splu(Kff).solve(Kfb)
    return Kr[b][:, b].toarray() - Kfb.T @ X


def halfspace_factor(nu: float) -> float:
    """a(nu) = 4 (1 - nu) / (3 - 4 nu): the normal stiffness of a plane-strain half-space per G |k|."""
    return 4 * (1 - nu) / (3 - 4 * nu)


def stability_coefficient(g_s: float, nu_s: float, g_li: float, nu_li: float, v: float) -> float:
    """C (Pa): the mechanical free-energy change of Li deposition per V_m |k| delta for an interface mode
    delta cos(k x) (> 0: opposes deposition at a crest, stabilising).

    Ahmad & Viswanathan 2017's isotropic stability parameter (pressure and deviatoric parts, the form used in
    their public screening code, ahzeeshan/screening-ml data-gen/calcMu.m) with the opposite sign convention:
    C = -chi_mech / (V_m k) at z = 1; v = V_Li+ / V_m.
    """
    b_s, b_li = 3 - 4 * nu_s, 3 - 4 * nu_li
    d = g_s * b_li * (1 - nu_s) + g_li * (1 - nu_li) * b_s
    c = 2 - 3 * nu_s - 3 * nu_li + 4 * nu_s * nu_li
    return -(1 - v) * (g_s ** 2 * b_li - g_li ** 2 * b_s) / (2 * d) - 2 * (1 + v) * g_li * g_s * c / d


def separation_modulus(nu_s: float, g_li: float, nu_li: float, v: float) -> float:
    """The layer shear modulus (Pa) at which C = 0 (surface tension aside), or nan when C keeps one sign.

    For v < 1 the layer is stable below it (density-driven), for v > 1 above it (pressure-driven); root of
    (1 - v) (b_Li x^2 - b_s) + 4 (1 + v) c x = 0, x = G / G_Li.
    """
    b_s, b_li = 3 - 4 * nu_s, 3 - 4 * nu_li
    c = 2 - 3 * nu_s - 3 * nu_li + 4 * nu_s * nu_li
    if v == 1:
        return math.nan
    roots = np.roots([(1 - v) * b_li, 4 * (1 + v) * c, -(1 - v) * b_s])
    pos = [r.real for r in roots if abs(r.imag) < 1e-12 and r.real > 0]
    return min(pos) * g_li if pos else math.nan


def mechanical_operator(s_layer: np.ndarray, s_li: np.ndarray, p: DendriteParams) -> np.ndarray:
    """M (nx x nx): nodal 'forces' whose value per unit true length, times V_m, is the mechanical free-energy
    change of deposition at each surface node for a roughness delta (M @ delta).

    Ahmad & Viswanathan's closed form written through the half-space stiffnesses K = G a(nu) (per |k|):
    C |k| = -(1 - v)/2 [G_s K_s/(1 - nu_s) - G_Li K_Li/(1 - nu_Li)]/(K_s + K_Li) |k|
            - (1 + v) c / (2 (1 - nu_s)(1 - nu_Li)) K_s K_Li/(K_s + K_Li) |k|,
    c = 2 - 3 nu_s - 3 nu_Li + 4 nu_s nu_Li. With the FE interface stiffnesses S (~ K |k| ds) and
    T = (S_s + S_Li)^-1, G K |k| / (K_s + K_Li) -> S T S / a(nu) and K_s K_Li |k| / (K_s + K_Li) -> S_s T S_Li:
    for a flat interface and one Fourier mode M reproduces C |k| ds exactly as the mesh is refined
    (tests/test_dendrite.py), on the mapped mesh it carries the surface's geometry.
    """
    v, nu_s, nu_li = p.ion_volume_ratio, p.poisson, p.li_poisson
    T = np.linalg.inv(s_layer + s_li)
    c = 2 - 3 * nu_s - 3 * nu_li + 4 * nu_s * nu_li
    pressure = (s_layer @ T @ s_layer / (halfspace_factor(nu_s) * (1 - nu_s))
                - s_li @ T @ s_li / (halfspace_factor(nu_li) * (1 - nu_li)))
    series = 0.5 * (s_layer @ T @ s_li + s_li @ T @ s_layer)
    return -(1 - v) / 2 * pressure - (1 + v) * c / (2 * (1 - nu_s) * (1 - nu_li)) * series


def layer_potential(x: np.ndarray, h: np.ndarray, far: float, ny: int, grading: float, conductivity: float,
                    i_surface: np.ndarray, ds: np.ndarray, i_applied: float) -> np.ndarray:
    """Ionic potential (V) at the surface nodes: Laplace in the layer, i_applied entering at the far side,
    i_surface (A/m^2, per unit true surface length ds) leaving into the Li; gauge phi = 0 at the far side."""
    from skfem import Basis, ElementQuad1
    from skfem.models.poisson import laplace

    nxp = len(x)
    nx = nxp - 1
    mesh = _quad_mesh(x, h, far, ny, grading, True)
    basis = Basis(mesh, ElementQuad1())
    K = conductivity * laplace.assemble(basis)
    node_map = _periodic_map(nxp, ny)
    n_red = node_map.max() + 1
    P = _prolongation(node_map[basis.nodal_dofs[0]], n_red)
    Kr = (P.T @ K @ P).tocsr()
    f = np.zeros(n_red)
    surf = node_map[:nx]
    top = node_map[ny * nxp: ny * nxp + nx]
    dx = np.diff(x)
    f[top] += i_applied * 0.5 * (dx + np.roll(dx, 1))
    # the surface current, rescaled to carry exactly the applied current (compatibility)
    q = i_surface * ds
    q *= i_applied * (x[-1] - x[0]) / q.sum() if q.sum() != 0 else 0.0
    f[surf] -= q
    ground = top[0]
    free = np.setdiff1d(np.arange(n_red), [ground])
    phi = np.zeros(n_red)
    phi[free] = splu(Kr[free][:, free].tocsc()).solve(f[free])
    return phi[surf]


# -- the surface ---------------------------------------------------------------------------------------------


def _slopes(h: np.ndarray, dx: float) -> np.ndarray:
    return (np.roll(h, -1) - np.roll(h, 1)) / (2 * dx)


def _node_lengths(h: np.ndarray, dx: float) -> np.ndarray:
    """True surface length attributed to each node (half of each adjacent segment)."""
    seg = np.hypot(dx, np.roll(h, -1) - h)
    return 0.5 * (seg + np.roll(seg, 1))


def _curvature_operator(n: int, dx: float, g: np.ndarray) -> np.ndarray:
    """kappa = -h_xx / g^3 (g = sqrt(1 + h_x^2) frozen): > 0 at a convex tip.

    h_xx is the exact periodic (spectral) second derivative: a three-point difference under-weights the
    shortest modes by up to pi^2/4, too little to hold the mesh-scale modes that the elastic term drives."""
    k = 2 * np.pi * np.fft.fftfreq(n, d=dx)
    D2 = np.real(np.fft.ifft(-(k ** 2)[:, None] * np.fft.fft(np.eye(n), axis=0), axis=0))
    return -D2 / g[:, None] ** 3


def _bv(X: np.ndarray, i0: float, a: float):
    """Deposition current density (A/m^2) and its derivative for the scaled driving force X = f (eta + dmu/F)."""
    X = np.clip(X, -1400.0, 1400.0)  # exp stays finite for any transfer coefficient
    e1, e2 = np.exp(-a * X), np.exp((1 - a) * X)
    return i0 * (e1 - e2), i0 * (-a * e1 - (1 - a) * e2)


#: profile snapshots: t = 0, decades from 1 ms (the mechanical transients are fast), and the end
SNAPSHOTS = (0.0, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


def run(params: DendriteParams, total_time: float = 450.0, mesh: Mesh = Mesh(), snapshots=SNAPSHOTS,
        initial: np.ndarray | None = None, dt_max: float = 5.0, min_dt: float = 1e-7,
        remap_tol: float = 0.02, max_change: float = 0.5, rel_change: float = 0.02) -> DendriteResult:
    """Grow the surface for ``total_time`` seconds; see the module docstring for the equations."""
    p = params
    p.check()
    if not (math.isfinite(total_time) and total_time > 0):
        raise AnalysisError(f"dendrite model: the growth time must be positive, got {total_time} s")
    if mesh.nx < 8 or mesh.ny < 2:
        raise AnalysisError("dendrite model: the mesh needs nx >= 8 and ny >= 2")
    t0 = _time.perf_counter()
    n, W = mesh.nx, p.period
    dx = W / n
    x = np.arange(n) * dx
    xp = np.append(x, W)
    h = initial_surface(p, x) if initial is None else np.asarray(initial, float).copy()
    f = FARADAY / (GAS_CONSTANT * p.temperature)
    c = p.molar_volume / FARADAY  # m^3/C: growth per charge
    a, i0, iapp = p.transfer_coefficient, p.exchange_current, p.current_density
    snaps = sorted({float(v) for v in snapshots if 0 <= v < total_time} | {0.0, float(total_time)})
    times, profiles = [0.0], [h.copy()]
    next_snap = 1
    amp0 = float(h.max() - h.min())
    i_s = np.full(n, iapp)
    Phi = -math.asinh(iapp / (2 * i0)) / f if a == 0.5 else 0.0  # flat-surface guess
    t, dt, steps, stopped = 0.0, min(0.05, dt_max), 0, None
    history = [(0.0, float(h.max()), float(h.min()))]
    centre = np.eye(n) - 1.0 / n
    mapped, remaps, phi, S = None, 0, None, None
    while t < total_time * (1 - 1e-12):
        hm = h.mean()
        if h.max() - hm > 0.9 * p.layer_thickness or hm - h.min() > 0.9 * p.li_depth:
            stopped = f"the surface left the modelled region at t = {t:.3g} s"
            break
        g = np.sqrt(1 + _slopes(h, dx) ** 2)
        ds = _node_lengths(h, dx)
        hp = np.append(h, h[0])
        shape = h - hm
        if mapped is None or np.abs(shape - mapped).max() > remap_tol * dx:
            # re-map both meshes to the surface; a uniform advance translates them and changes no operator
            mapped = shape
            remaps += 1
            phi = layer_potential(xp, hp, hm + p.layer_thickness, mesh.ny, mesh.grading, p.conductivity, i_s, ds,
                                  iapp)
            S = np.zeros((n, n))
            if p.mechanics:
                S = mechanical_operator(
                    interface_stiffness(xp, hp, hm + p.layer_thickness, mesh.ny, mesh.grading, p.shear_modulus,
                                        p.poisson, True),
                    interface_stiffness(xp, hp, hm - p.li_depth, mesh.ny, mesh.grading, p.li_shear_modulus,
                                        p.li_poisson, False), p)
        A = np.zeros((n, n))  # dmu = V_m * A @ h  (Pa)
        if p.mechanics:
            A += (S / ds[:, None]) @ centre
        if p.capillarity and p.surface_energy > 0:
            A += (1 + p.ion_volume_ratio) / 2 * p.surface_energy * _curvature_operator(n, dx, g)
        k = p.molar_volume * f / FARADAY  # X per Pa: f * V_m / F
        while True:
            dt = min(dt, total_time - t, (snaps[next_snap] - t) if next_snap < len(snaps) else dt)
            sol = _implicit_step(h, Phi, phi, A, g, ds, dt, c, k, f, i0, a, iapp, W, dx, p.kinetics == "exchange")
            if sol is not None:
                break
            dt /= 2
            if dt < min_dt:
                break
        if sol is None:
            stopped = (f"runaway growth at t = {t:.3g} s: the time step fell below {min_dt:g} s (the surface "
                       "sharpens faster than the model resolves)")
            if p.kinetics == "exchange":  # there the step also fails where e^(|dmu|/2RT) outruns the lagged potential
                stopped = (f"no converged step at t = {t:.3g} s, down to {min_dt:g} s (exchange kinetics: runaway "
                           "sharpening, or current concentrated beyond what the lagged ionic potential resolves)")
            break
        h_new, Phi, i_s, iters = sol
        change = np.abs((h_new - h_new.mean()) - (h - h.mean())).max()  # of the shape: a uniform advance is free
        amp = h.max() - h.min()
        allowed = min(max_change * dx, max(rel_change * amp, 1e-3 * dx))  # backward Euler: small relative steps
        if change > allowed:
            if dt / 2 >= min_dt:
                dt /= 2
                continue
            # at the smallest step: backward Euler damps a decaying shape without inverting it (accepted), but
            # it inverts or wrongly shrinks a mode growing faster than 1/dt (refused: runaway)
            old_shape, new_shape = h - h.mean(), h_new - h_new.mean()
            if not (new_shape @ old_shape > 0 and np.ptp(new_shape) <= np.ptp(old_shape)):
                stopped = (f"runaway growth at t = {t:.3g} s: the shape changes by more than the step limit even "
                           f"at a {min_dt:g} s step (the surface sharpens faster than the model resolves)")
                break
        h = h_new
        t += dt
        steps += 1
        history.append((t, float(h.max()), float(h.min())))
        if next_snap < len(snaps) and t >= snaps[next_snap] * (1 - 1e-12):
            times.append(t)
            profiles.append(h.copy())
            next_snap += 1
        if iters <= 8 and change < 0.5 * allowed:
            dt = min(dt * 1.5, dt_max)
    if stopped and (not times or times[-1] < t):
        times.append(t)
        profiles.append(h.copy())
    return DendriteResult(params=p, mesh=mesh, x=x, times=times, profiles=profiles, tip_height=float(h.max()),
                          valley_height=float(h.min()), initial_amplitude=amp0, amplitude=float(h.max() - h.min()),
                          mean_height=float(h.mean()), faraday_height=iapp * c * t, steps=steps, remaps=remaps,
                          wall_time=_time.perf_counter() - t0, stopped=stopped, history=history)


def _implicit_step(h, Phi, phi, A, g, ds, dt, c, k, f, i0, a, iapp, W, dx, exchange=False):
    """Backward Euler: (h_new, Phi, i, Newton iterations) or None when Newton does not converge.

    The kinetics are solved in inverse form (exact for the symmetric transfer coefficient 0.5), with
    m = dmu/RT = k (A h) and i_j = (h_j - h_old_j) / (dt c g_j):
    "potential" kinetics, f (Phi - phi_j) + m_j + 2 asinh(i_j / (2 i0)) = 0;
    "exchange" kinetics (i0 -> i0 exp(-m/2)), f (Phi - phi_j) + 2 asinh(i_j exp(m_j/2) / (2 i0)) = 0.
    The driving force is linear in h and the inverse logarithmic, so a damped Newton converges in a few
    iterations even when the elastic term is hundreds of RT/F; the galvanostatic condition is linear in h.
    """
    n = len(h)
    total = iapp * W
    scale = 1.0 / (dt * c * g)  # i_j = scale_j * (h_j - h_old_j)

    def half_m(z):  # m/2, clipped so that exp stays finite
        return np.clip(0.5 * k * (A @ z[:n]), -700.0, 700.0)

    def residual(z):
        i = scale * (z[:n] - h)
        if exchange:
            kin = 2 * np.arcsinh(i * np.exp(half_m(z)) / (2 * i0))
        else:
            kin = k * (A @ z[:n]) + 2 * np.arcsinh(i / (2 * i0))
        return np.append(f * (z[n] - phi) + kin, (ds @ i - total) / total)

    if exchange:
        # start from the current distribution of the old surface (it may be concentrated on a few nodes by
        # factors e^(|m|/2) of 1e30 and more; a uniform start is then far outside Newton's reach)
        pref = np.exp(-half_m(np.append(h, 0.0)))
        Phi = _galvanostatic_potential(-phi, ds, f, i0, a, total, Phi, prefactor=pref)
        z = np.append(h + dt * c * g * pref * _bv(f * (Phi - phi), i0, a)[0], Phi)
    else:
        Phi = _galvanostatic_potential(-phi + k / f * (A @ h), ds, f, i0, a, total, Phi)
        z = np.append(h + dt * c * iapp * g, Phi)
    r = residual(z)
    for it in range(1, 80):
        J = np.zeros((n + 1, n + 1))
        if exchange:
            e = np.exp(half_m(z))
            i = scale * (z[:n] - h)
            u = i * e / (2 * i0)
            # d/dh_l of 2 asinh(u_j): 2 / sqrt(1 + u_j^2) * (scale_j e_j delta_jl + i_j e_j k A_jl / 2) / (2 i0)
            J[:n, :n] = (1 / (i0 * np.sqrt(1 + u * u)))[:, None] * (np.diag(scale * e) + (0.5 * k * i * e)[:, None] * A)
        else:
            u = scale * (z[:n] - h) / (2 * i0)
            J[:n, :n] = k * A + np.diag(scale / (i0 * np.sqrt(1 + u * u)))
        J[:n, n] = f
        J[n, :n] = ds * scale / total
        J[:, :n] *= dx  # unknowns h / dx and Phi: columns of comparable size
        rows = 1.0 / np.abs(J).max(axis=1)
        try:
            step = np.linalg.solve(J * rows[:, None], -r * rows)
        except np.linalg.LinAlgError:
            return None
        step[:n] *= dx
        if not np.all(np.isfinite(step)):
            return None
        norm = np.abs(r).max()
        # exchange kinetics: m enters an exponential, so a long trial step can overflow it; hold each Newton
        # step to one cell (a trust region; the converged solution is unchanged)
        lam = min(1.0, dx / max(np.abs(step[:n]).max(), 1e-300)) if exchange else 1.0
        while True:  # backtracking: the full step may overshoot across the asinh's knee
            trial = z + lam * step
            with np.errstate(over="ignore", invalid="ignore"):
                r_trial = residual(trial)
            if np.abs(r_trial).max() < (1 - 1e-4 * lam) * norm or lam < 1e-3:
                break
            lam /= 2
        if not np.all(np.isfinite(r_trial)):
            return None
        z, r = trial, r_trial
        if np.abs(lam * step[:n]).max() < 1e-7 * dx and np.abs(r[:n]).max() < 1e-6:
            return z[:n], z[n], scale * (z[:n] - h), it
    return None


def _galvanostatic_potential(base: np.ndarray, ds: np.ndarray, f: float, i0: float, a: float, total: float,
                             guess: float, prefactor: np.ndarray | float = 1.0) -> float:
    """The Li potential Phi at which the surface, with X = f (Phi + base) and the exchange current scaled by
    ``prefactor``, carries ``total`` (bisection)."""
    def excess(P):
        return ds @ (prefactor * _bv(f * (P + base), i0, a)[0]) - total

    lo, hi = guess - 0.05, guess + 0.05
    while excess(lo) < 0:  # current decreases with Phi
        lo -= 2 * (hi - lo)
    while excess(hi) > 0:
        hi += 2 * (hi - lo)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if excess(mid) > 0:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


# -- the Li+ volume ratio of a layer from its structure ---------------------------------------------------------

AVOGADRO = 6.02214076e23  # 1/mol
_ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI", 7: "VII", 8: "VIII", 9: "IX", 10: "X", 11: "XI",
          12: "XII"}


@dataclass(frozen=True)
class IonVolume:
    """The Li+ partial molar volume of a layer, from the Shannon radius of Li+ at each Li site's coordination."""

    ratio: float  # v = V_Li+ / V_m
    volume: float  # m^3/mol, V_Li+ (site average)
    coordinations: tuple[int, ...]  # coordination number of each Li site
    radii: tuple[float, ...]  # Angstrom, the Shannon radius used for each Li site
    interpolated: tuple[int, ...] = ()  # coordinations that pymatgen's Shannon table lacks (radius from the fit)

    @property
    def mean_coordination(self) -> float:
        return float(np.mean(self.coordinations))


def li_shannon_radius(cn: int) -> tuple[float, bool]:
    """Shannon ionic radius (Angstrom) of Li+ at coordination number ``cn``, and whether it was interpolated.

    pymatgen's table (Shannon, Acta Cryst. A32, 751 (1976)) has Li+ at IV, VI and VIII (0.59, 0.76, 0.92).
    Other coordinations take the least-squares straight line through those three points, the construction
    Ahmad et al. (ACS Cent. Sci. 4, 996 (2018)) use for every coordination number.
    """
    from pymatgen.core import Species

    li = Species("Li", 1)
    if cn < 1:
        raise AnalysisError(f"Li+ Shannon radius: coordination number {cn} is not positive")
    try:
        return float(li.get_shannon_radius(_ROMAN.get(cn, ""))), False
    except KeyError:
        pass
    table = [(n, float(li.get_shannon_radius(r))) for n, r in _ROMAN.items() if _has_radius(li, r)]
    slope, intercept = np.polyfit([n for n, _ in table], [r for _, r in table], 1)
    return float(slope * cn + intercept), True


def _has_radius(species, roman: str) -> bool:
    try:
        species.get_shannon_radius(roman)
        return True
    except KeyError:
        return False


def li_ion_volume_ratio(structure, molar_volume: float = DendriteParams().molar_volume) -> IonVolume:
    """v = V_Li+ / V_m for a layer (pymatgen Structure), after Ahmad et al., ACS Cent. Sci. 4, 996 (2018).

    Each Li site's coordination number comes from pymatgen's CrystalNN, its radius r from the Shannon table
    (``li_shannon_radius``); V_Li+ = N_A (4 pi / 3) r^3 averaged over the Li sites, divided by Li metal's molar
    volume. Ahmad et al.'s code averages the (Voronoi) coordination number first and takes one radius; averaging
    the volume per site differs from that only where the Li sites differ. Li2O (tetrahedral Li): 0.040.
    """
    from pymatgen.analysis.local_env import CrystalNN

    sites = [i for i, site in enumerate(structure) if site.specie.symbol == "Li"]
    if not sites:
        raise AnalysisError(f"{structure.composition.reduced_formula}: no Li site to take the Li+ volume from")
    nn = CrystalNN()
    cns = tuple(int(nn.get_cn(structure, i)) for i in sites)
    radii, interpolated = [], []
    for cn in cns:
        r, fitted = li_shannon_radius(cn)
        radii.append(r)
        if fitted:
            interpolated.append(cn)
    volume = float(np.mean([4 * math.pi / 3 * (r * 1e-10) ** 3 * AVOGADRO for r in radii]))
    return IonVolume(ratio=volume / molar_volume, volume=volume, coordinations=cns, radii=tuple(radii),
                     interpolated=tuple(sorted(set(interpolated))))


def sweep(shear_moduli, params: DendriteParams = DendriteParams(), **kw) -> list[DendriteResult]:
    """One run per layer shear modulus (Pa)."""
    return [run(replace(params, shear_modulus=float(G)), **kw) for G in shear_moduli]
