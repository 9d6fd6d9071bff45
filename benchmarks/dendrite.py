"""The numbers and figure of docs/dendrite.md: checks, limits, sweeps, mesh convergence and LGPS vs 60 GPa.

    python3 benchmarks/dendrite.py [--only PART ...] [--quick] [--out docs]

Parts (all by default, in this order):
  faraday      flat surface, mechanics off: uniform growth by i V_m t / F
  halfspace    the FE interface stiffness against the half-space 4 G k (1 - nu) / (3 - 4 nu), and the model's
               mechanical operator against Ahmad & Viswanathan's closed form (flat interface, one mode)
  separation   the closed-form separation modulus G_sep(v) against Monroe & Newman's "about twice G_Li"
  sweep        0.1..120 GPa at the default v (inorganic layer) and at v = 5 (pressure-driven regime), mesh 32x8
               (about an hour: the runs just above the separation, 2.7-4 GPa, take thousands of steps)
  lgps         LGPS (8 GPa) vs 60 GPa on 64x16: docs/dendrite_lgps_vs_60.png and the numbers
  exchange     the other kinetic coupling (kinetics="exchange", docs/dendrite.md equation (5)): its rate against
               the default's in the linear regime (2 i0 / i_app = 20) and on the cap, and the v = 0.04 sweep
               on 32x8 (a few minutes)
  convergence  meshes 32x8, 64x16, 128x32 (--quick: two): capillarity only (mechanics off) at 1 s and 450 s,
               1 GPa (flattens) at 10 ms and 0.1 s, 8 GPa (roughens) at 5-20 us and its runaway time,
               and 8 GPa to 20 us on 64x16, 128x32, 256x64 (lgps20); in the exchange coupling 2.7 GPa to
               450 s, 3 and 8 GPa to their stop (x27, x3, x8; about 8 CPU-minutes on 128x32);
               --cases normal: normal growth only (mechanics and capillarity off) against the Huygens envelope
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from coatflow.launchers.dendrite import plot_profiles
from coatflow.workflows.analysis import dendrite as d

P = d.DendriteParams()
T = 450.0
G_LI = P.li_shear_modulus
PARTS = ("faraday", "halfspace", "separation", "sweep", "lgps", "exchange", "convergence")


def _fmt(v, spec=".3g"):
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)


def faraday() -> None:
    p = replace(P, cap_height=0.0, mechanics=False)
    r = d.run(p, total_time=T, mesh=d.Mesh(32, 8))
    analytic = p.current_density * p.molar_volume / d.FARADAY * T
    print(f"faraday: flat, mechanics off, {T:g} s: mean height {r.mean_height * 1e9:.6f} nm, analytic "
          f"i V_m t / F = {analytic * 1e9:.6f} nm (rel. diff {abs(r.mean_height / analytic - 1):.1e}); "
          f"peak-to-valley {r.amplitude:.1e} m; {r.wall_time:.1f} s")


def _flat(nx):
    W = P.period
    x = np.arange(nx) * W / nx
    return np.append(x, W), np.zeros(nx + 1), np.cos(2 * np.pi * x / W), W / nx, 2 * np.pi / W


def halfspace() -> None:
    print("halfspace: traction / (G k delta) for delta = cos(k x), lambda = 20 nm, depth 40 nm")
    for nx, ny in ((32, 8), (64, 16), (128, 32)):
        xp, hp, delta, dx, k = _flat(nx)
        row = []
        for nu in (P.poisson, P.li_poisson):
            S = d.interface_stiffness(xp, hp, 40e-9, ny, 2.0, 1.0, nu, True)
            a = (S @ delta / dx) @ delta / (delta @ delta) / k
            row.append(f"nu={nu}: FE {a:.4f} analytic {d.halfspace_factor(nu):.4f}")
        print(f"   mesh {nx}x{ny}: " + "; ".join(row), flush=True)
    print("   mechanical operator vs Ahmad & Viswanathan's closed form C (GPa; C > 0 stabilising), same mode:")
    for nx, ny in ((32, 8), (64, 16), (128, 32)):
        xp, hp, delta, dx, k = _flat(nx)
        s_li = d.interface_stiffness(xp, hp, -40e-9, ny, 2.0, G_LI, P.li_poisson, False)
        row = []
        for g, v in ((1, P.ion_volume_ratio), (8, P.ion_volume_ratio), (60, P.ion_volume_ratio), (8, 5.0)):
            p = replace(P, shear_modulus=g * 1e9, ion_volume_ratio=v)
            s_s = d.interface_stiffness(xp, hp, 40e-9, ny, 2.0, p.shear_modulus, p.poisson, True)
            fe = (d.mechanical_operator(s_s, s_li, p) @ delta / dx) @ delta / (delta @ delta) / k
            exact = d.stability_coefficient(p.shear_modulus, p.poisson, G_LI, P.li_poisson, v)
            row.append(f"G={g} v={v:g}: {fe / 1e9:.4f} vs {exact / 1e9:.4f} ({(fe / exact - 1) * 100:+.2f} %)")
        print(f"   mesh {nx}x{ny}: " + "; ".join(row), flush=True)


def separation() -> None:
    print("separation: G_sep (C = 0, surface tension aside) from Ahmad & Viswanathan's closed form, G_Li = 3.4 GPa, "
          "nu_Li = 0.42")
    for nu_s in (0.3, 0.33):
        row = []
        for v in (0.0, 0.04, 0.085, 0.5, 0.9, 1.1, 2.0, 5.0, 12.0, 1e6):
            g = d.separation_modulus(nu_s, G_LI, P.li_poisson, v)
            side = "stable below" if v < 1 else "stable above"
            row.append(f"v={v:g}: {g / 1e9:.2f} GPa = {g / G_LI:.2f} G_Li ({side})")
        print(f"   nu_s = {nu_s}: " + "; ".join(row))
    k = 2 * np.pi / P.period
    for lam in (20e-9, 10e-9, 5e-9, 2e-9):
        k = 2 * np.pi / lam
        # with capillarity: C(G) + (1 + v)/2 gamma k = 0
        gs = [g for g in np.linspace(0.01, 20, 20000) * 1e9
              if d.stability_coefficient(g, P.poisson, G_LI, P.li_poisson, P.ion_volume_ratio)
              + (1 + P.ion_volume_ratio) / 2 * P.surface_energy * k > 0]
        print(f"   v = {P.ion_volume_ratio:g}, lambda = {lam * 1e9:4.0f} nm, with capillarity: stable for G < "
              f"{max(gs) / 1e9:.2f} GPa")
    print(f"   Monroe & Newman 2005 (abstract): roughening suppressed at about twice G_Li = {2 * G_LI / 1e9:.1f} GPa "
          f"(1.8 G_Li = {1.8 * G_LI / 1e9:.2f} GPa)")


def describe(g, r: d.DendriteResult) -> str:
    t10 = r.time_to(0.1)
    end = (f"stopped at {r.times[-1]:.3g} s ({r.stopped.split(':')[0]})" if r.stopped
           else (f"flat to 10 % at {_fmt(t10)} s" if t10 else "rougher at the end"))
    return (f"   G = {g:6.1f} GPa: A(end) = {r.amplification:9.3g} at t = {r.times[-1]:7.3g} s; A(10 us) = "
            f"{_fmt(r.amplification_at(1e-5), '.4g'):>7}, A(1 ms) = {_fmt(r.amplification_at(1e-3), '.4g'):>7}, "
            f"A(10 ms) = {_fmt(r.amplification_at(1e-2), '.4g'):>7}, A(0.1 s) = "
            f"{_fmt(r.amplification_at(0.1), '.4g'):>9}, A(1 s) = {_fmt(r.amplification_at(1.0), '.4g'):>9}, "
            f"A(10 s) = {_fmt(r.amplification_at(10.0), '.4g'):>9}, A(100 s) = "
            f"{_fmt(r.amplification_at(100.0), '.4g'):>9}; {end}; {r.steps} steps, {r.wall_time:.0f} s")


def sweep(v: float, moduli, kinetics: str = P.kinetics) -> list:
    print(f"sweep: v = {v:g}, {kinetics} kinetics, mesh 32x8, {T:g} s (A = peak-to-valley amplitude / initial; "
          f"cap 10 nm wide, {P.cap_height * 1e9:g} nm high, period {P.period * 1e9:g} nm)")
    out = []
    for g in moduli:
        r = d.run(replace(P, shear_modulus=g * 1e9, ion_volume_ratio=v, kinetics=kinetics), total_time=T,
                  mesh=d.Mesh(32, 8))
        out.append((g, r))
        print(describe(g, r), flush=True)
    flat = [g for g, r in out if not r.stopped and r.amplification < 1]
    rough = [g for g, r in out if not r.stopped and r.amplification >= 1]
    stopped = [g for g, r in out if r.stopped]
    print(f"   v = {v:g}: flattened at G = {flat} GPa; rougher at the end at G = {rough} GPa; stopped early "
          f"(runaway, or no converged step) at G = {stopped} GPa; closed-form G_sep = "
          f"{d.separation_modulus(P.poisson, G_LI, P.li_poisson, v) / 1e9:.2f} GPa")
    return out


def exchange() -> None:
    """The exchange-current coupling against the default (equilibrium-potential) one, then its sweep."""
    print("exchange: A - 1, default (potential) coupling / exchange-current coupling, mesh 32x8")
    for label, cap, g, t_end in (("linear regime, cap 0.01 nm", 1e-11, 1e9, 2e-3),
                                 ("linear regime, cap 0.01 nm", 1e-11, 8e9, 2e-4),
                                 ("the 2.5 nm cap", P.cap_height, 1e9, 1e-3), ("the 2.5 nm cap", P.cap_height, 8e9, 5e-6)):
        a = [d.run(replace(P, shear_modulus=g, cap_height=cap, kinetics=k), total_time=t_end, mesh=d.Mesh(32, 8),
                   dt_max=t_end / 50).amplification - 1 for k in ("potential", "exchange")]
        print(f"   {label}, {g / 1e9:g} GPa, {t_end:g} s: {a[0]:.4g} / {a[1]:.4g} = {a[0] / a[1]:.3g} "
              f"(linear theory: 2 i0 / i_app = {2 * P.exchange_current / P.current_density:g})", flush=True)
    sweep(P.ion_volume_ratio, (1, 2.3, 2.7, 3, 4, 8, 20, 60, 120), kinetics="exchange")


SNAPS = (0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


def lgps_vs_60(out: Path) -> None:
    runs = [(g, d.run(replace(P, shear_modulus=g * 1e9), total_time=T, mesh=d.Mesh(64, 16), snapshots=SNAPS))
            for g in (8, 60)]
    print(f"lgps: LGPS (8 GPa) vs 60 GPa, v = {P.ion_volume_ratio:g}, mesh 64x16:")
    for g, r in runs:
        print(f"   G = {g} GPa: end {r.times[-1]:.3g} s ({r.stopped or 'ran to the end'}); tip {r.tip_height * 1e9:.3f} nm, "
              f"valley {r.valley_height * 1e9:.3f} nm, tip/valley {r.ratio:.4g}, A(end) = {r.amplification:.3g}, "
              f"A(1 us) = {_fmt(r.amplification_at(1e-6), '.4g')}, A(10 us) = {_fmt(r.amplification_at(1e-5), '.4g')}, "
              f"A(0.1 ms) = {_fmt(r.amplification_at(1e-4), '.4g')}, A(1 ms) = {_fmt(r.amplification_at(1e-3), '.4g')}, "
              f"A(10 ms) = {_fmt(r.amplification_at(1e-2), '.4g')}; {r.steps} steps, {r.wall_time:.0f} s", flush=True)
    path = plot_profiles(runs, out / "dendrite_lgps_vs_60.png",
                         f"Li caps under LGPS (8 GPa) and a 60 GPa coating, V_Li+/V_Li = {P.ion_volume_ratio:g}, "
                         "0.1 mA/cm2 (shape about the mean)")
    print(f"   wrote {path}")


def huygens_amplitude(p: d.DendriteParams, n: int = 2000) -> float:
    """Peak-to-valley amplitude after pure normal growth (the viscosity solution: upper envelope of circles of
    radius s about the initial surface), s chosen so that the mean height grows by i V_m t / F."""
    W = p.period
    x = np.arange(n) * W / n
    h0 = d.initial_surface(p, x)
    target = h0.mean() + p.current_density * p.molar_volume / d.FARADAY * T

    def envelope(s):
        dxs = (x[:, None] - x[None, :] + W / 2) % W - W / 2  # periodic separation
        reach = np.where(np.abs(dxs) <= s, np.sqrt(np.maximum(s * s - dxs ** 2, 0.0)), -np.inf)
        return (h0[None, :] + reach).max(axis=1)

    lo, hi = 0.5 * (target - h0.mean()), 1.5 * (target - h0.mean())
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if envelope(mid).mean() < target else (lo, mid)
    e = envelope(0.5 * (lo + hi))
    return float(e.max() - e.min())


CASES = {  # name: (label, params, run time, [(quantity, function of the result)][, run() keywords])
    "normal": ("normal growth only (mechanics and capillarity off)", replace(P, mechanics=False, capillarity=False),
               T, [("A(450 s)", lambda r: r.amplification)]),
    "capillarity": ("capillarity only (mechanics off)", replace(P, mechanics=False), T,
                    [("A(1 s)", lambda r: r.amplification_at(1.0)), ("A(450 s)", lambda r: r.amplification)]),
    "soft": ("1 GPa (flattens)", replace(P, shear_modulus=1e9), 0.1,
             [("A(10 ms)", lambda r: r.amplification_at(1e-2)), ("A(0.1 s)", lambda r: r.amplification_at(0.1))]),
    "lgps": ("8 GPa (roughens)", replace(P, shear_modulus=8e9), 1e-3,
             [("A(5 us)", lambda r: r.amplification_at(5e-6)), ("A(10 us)", lambda r: r.amplification_at(1e-5)),
              ("A(20 us)", lambda r: r.amplification_at(2e-5)),
              ("runaway time", lambda r: r.times[-1] if r.stopped else float("nan"))]),
    "lgps20": ("8 GPa (roughens), to 20 us, steps <= 1 us", replace(P, shear_modulus=8e9), 2e-5,
               [("A(5 us)", lambda r: r.amplification_at(5e-6)), ("A(10 us)", lambda r: r.amplification_at(1e-5)),
                ("A(20 us)", lambda r: r.amplification_at(2e-5))], {"dt_max": 1e-6}),
    "x27": ("2.7 GPa, exchange-current coupling", replace(P, shear_modulus=2.7e9, kinetics="exchange"), T,
            [("A(1 s)", lambda r: r.amplification_at(1.0)), ("A(10 s)", lambda r: r.amplification_at(10.0)),
             ("A(450 s)", lambda r: float("nan") if r.stopped else r.amplification)]),
    "x3": ("3 GPa, exchange-current coupling", replace(P, shear_modulus=3e9, kinetics="exchange"), T,
           [("A(1 s)", lambda r: r.amplification_at(1.0)), ("stop time", lambda r: r.times[-1])]),
    "x8": ("8 GPa, exchange-current coupling", replace(P, shear_modulus=8e9, kinetics="exchange"), T,
           [("A(10 ms)", lambda r: r.amplification_at(1e-2)), ("A(0.1 s)", lambda r: r.amplification_at(0.1)),
            ("stop time", lambda r: r.times[-1])]),
}
MESHES = (d.Mesh(32, 8), d.Mesh(64, 16), d.Mesh(128, 32))
FINE = d.Mesh(256, 64)  # only for "lgps20": below 128 nodes per period the 8 GPa cap runs away on the mesh scale


def convergence_run(name: str, mesh: d.Mesh) -> list:
    """One case on one mesh: prints a line, returns the case's quantities."""
    label, p, t_end, quantities, *kw = CASES[name]
    r = d.run(p, total_time=t_end, mesh=mesh, **(kw[0] if kw else {}))
    q = [f(r) for _, f in quantities]
    print(f"   {label}, {mesh.nx}x{mesh.ny}: " + ", ".join(f"{n} = {_fmt(v, '.5g')}" for (n, _), v in zip(quantities, q))
          + f"; end {r.times[-1]:.3g} s ({r.stopped or 'ran to the end'}); {r.steps} steps, {r.remaps} re-mappings, "
          f"{r.wall_time:.0f} s", flush=True)
    return q


def convergence(quick: bool, names=tuple(CASES)) -> None:
    print("convergence")
    for name in names:
        meshes = (MESHES[1:] + (FINE,) if name == "lgps20" else MESHES)[: 2 if quick else 3]
        label, _, _, quantities, *_ = CASES[name]
        vals = [convergence_run(name, m) for m in meshes]
        for j, (n, _) in enumerate(quantities):
            a, b = vals[-2][j], vals[-1][j]
            print(f"   {label}: {n} changes by {abs(b / a - 1) * 100:.2f} % between the two finest meshes")
        if name == "normal":
            x = np.arange(2000) * P.period / 2000
            h0 = d.initial_surface(P, x)
            print(f"   Huygens envelope (exact for pure normal growth): A(450 s) = "
                  f"{huygens_amplitude(P) / (h0.max() - h0.min()):.5g}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    ap.add_argument("--quick", action="store_true", help="two meshes in the convergence study")
    ap.add_argument("--cases", nargs="+", choices=tuple(CASES), default=[c for c in CASES if c != "normal"],
                    help="convergence cases (default: all but 'normal', which the discretisation cannot do: "
                         "docs/dendrite.md)")
    ap.add_argument("--out", default="docs", help="folder for dendrite_lgps_vs_60.png")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if "faraday" in args.only:
        faraday()
    if "halfspace" in args.only:
        halfspace()
    if "separation" in args.only:
        separation()
    if "sweep" in args.only:
        sweep(P.ion_volume_ratio, (0.1, 0.5, 1, 2, 2.3, 2.7, 3, 4, 8, 20, 60, 120))
        sweep(5.0, (1, 4, 6, 9, 12, 60, 120))
    if "lgps" in args.only:
        lgps_vs_60(Path(args.out))
    if "exchange" in args.only:
        exchange()
    if "convergence" in args.only:
        convergence(args.quick, args.cases)
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
