"""The figures of docs/dendrite.md: checks, limits, sweep, mesh convergence and LGPS vs 60 GPa.

    python3 benchmarks/dendrite.py [--quick] [--out docs]

1. Faraday limit: a flat surface with the mechanical term off grows uniformly by i V_m t / F.
2. The elastic FE against the analytic half-space stiffness 4 G k (1 - nu) / (3 - 4 nu).
3. The linear-stability separation modulus of the model (from the FE operators) against Monroe & Newman.
4. The sweep 1..120 GPa: roughness amplification at 450 s (or when the run stopped), A(1 ms), A(10 ms), the
   time to flatten to 10 % or the time of runaway.
5. Mesh convergence at 8 and 60 GPa on three meshes (--quick: two).
6. LGPS (8 GPa) against 60 GPa: docs/dendrite_lgps_vs_60.png and the numbers.
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


def _fmt(v, spec=".3g"):
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)


def faraday() -> None:
    p = replace(P, cap_height=0.0, mechanics=False)
    r = d.run(p, total_time=T, mesh=d.Mesh(32, 8))
    analytic = p.current_density * p.molar_volume / d.FARADAY * T
    print(f"1. Faraday limit (flat, mechanics off, {T:g} s): mean height {r.mean_height * 1e9:.6f} nm, analytic "
          f"i V_m t / F = {analytic * 1e9:.6f} nm (rel. diff {abs(r.mean_height / analytic - 1):.1e}); "
          f"peak-to-valley {r.amplitude:.1e} m")


def halfspace() -> None:
    print("2. Elastic FE vs half-space: traction / (G k delta) for delta = cos(k x), lambda = 20 nm, depth 40 nm")
    W = P.period
    k = 2 * np.pi / W
    for nx, ny in ((32, 8), (64, 16), (128, 32)):
        x = np.arange(nx) * W / nx
        xp, hp = np.append(x, W), np.zeros(nx + 1)
        delta = np.cos(k * x)
        row = []
        for nu in (P.poisson, P.li_poisson):
            S = d.interface_stiffness(xp, hp, 40e-9, ny, 2.0, 1.0, nu, True)
            a = (S @ delta / (W / nx)) @ delta / (delta @ delta) / k
            row.append(f"nu={nu}: FE {a:.4f} analytic {4 * (1 - nu) / (3 - 4 * nu):.4f}")
        print(f"   mesh {nx}x{ny}: " + "; ".join(row))


def separation_modulus() -> None:
    """G at which the fundamental (and the long-wave) mode is neutral: G a_s(k) = G_Li a_Li(k) - gamma k^2."""
    def a(nu):
        return 4 * (1 - nu) / (3 - 4 * nu)

    long_wave = P.li_shear_modulus * a(P.li_poisson) / a(P.poisson)
    print(f"3. Linear stability of this model: G_sep = G_Li a(nu_Li) / a(nu) = {long_wave / 1e9:.2f} GPa "
          f"= {long_wave / P.li_shear_modulus:.2f} G_Li for long waves (a(nu) = 4 (1 - nu) / (3 - 4 nu), "
          f"nu = {P.poisson}, nu_Li = {P.li_poisson})")
    for lam in (20e-9, 10e-9, 5e-9, 2e-9):
        k = 2 * np.pi / lam
        g = (P.li_shear_modulus * a(P.li_poisson) * k - P.surface_energy * k * k) / (a(P.poisson) * k)
        print(f"   lambda = {lam * 1e9:4.0f} nm (with capillarity): G_sep = {g / 1e9:.2f} GPa")
    print(f"   Monroe & Newman 2005: G_sep ~ 1.8-2.2 G_Li = {1.8 * 3.4:.1f}-{2.2 * 3.4:.1f} GPa (G_Li = 3.4 GPa)")


def describe(g, r: d.DendriteResult) -> str:
    t10 = r.time_to(0.1)
    end = f"runaway at {r.times[-1]:.3g} s" if r.stopped else (f"flat to 10 % at {_fmt(t10)} s" if t10 else "")
    return (f"   G = {g:6.1f} GPa: A(end) = {r.amplification:9.3g} at t = {r.times[-1]:7.3g} s; A(1 ms) = "
            f"{_fmt(r.amplification_at(1e-3), '.4g'):>7}, A(10 ms) = {_fmt(r.amplification_at(1e-2), '.4g'):>7}, "
            f"A(0.1 s) = {_fmt(r.amplification_at(0.1), '.4g'):>9}; tip {r.tip_height * 1e9:7.3f} nm, valley "
            f"{r.valley_height * 1e9:7.3f} nm; {end}; {r.steps} steps, {r.wall_time:.0f} s")


def sweep() -> list:
    print(f"4. Sweep on mesh 32x8, {T:g} s (A = peak-to-valley amplitude / initial; cap 10 nm wide, "
          f"{P.cap_height * 1e9:g} nm high, period {P.period * 1e9:g} nm)")
    out = []
    for g in (1, 2, 3, 3.5, 4, 4.5, 5, 6, 8, 12, 20, 40, 60, 120):
        r = d.run(replace(P, shear_modulus=g * 1e9), total_time=T, mesh=d.Mesh(32, 8))
        out.append((g, r))
        print(describe(g, r), flush=True)
    a1 = [r.amplification_at(1e-3) for _, r in out]
    ok = [v for v in a1 if not np.isnan(v)]
    print(f"   A(1 ms) non-increasing in G where defined: {all(x >= y for x, y in zip(ok, ok[1:]))}")
    first_flat = next((g for g, r in out if not r.stopped), None)
    last_rough = max((g for g, r in out if r.stopped), default=None)
    print(f"   roughening stops between {last_rough} and {first_flat} GPa "
          f"(= {last_rough / 3.4:.2f}-{first_flat / 3.4:.2f} G_Li)")
    return out


def convergence(quick: bool) -> dict:
    meshes = [d.Mesh(32, 8), d.Mesh(64, 16)] + ([] if quick else [d.Mesh(128, 32)])
    print("5. Mesh convergence (" + ", ".join(f"{m.nx}x{m.ny}" for m in meshes) + ")")
    runs = {}
    for g in (8, 60):
        for m in meshes:
            r = d.run(replace(P, shear_modulus=g * 1e9), total_time=T, mesh=m)
            runs[(g, m.nx)] = r
            print(f"   G = {g} GPa, {m.nx}x{m.ny}: A(450 s) = {r.amplification:.3g}, A(10 ms) = "
                  f"{r.amplification_at(1e-2):.4g}, A(0.1 s) = {r.amplification_at(0.1):.4g}, t_10% = "
                  f"{_fmt(r.time_to(0.1), '.4g')} s, {r.steps} steps, {r.remaps} re-mappings, {r.wall_time:.0f} s",
                  flush=True)
        a, b = (runs[(g, m.nx)] for m in meshes[-2:])
        for name, f in (("A(10 ms)", lambda r: r.amplification_at(1e-2)), ("A(0.1 s)", lambda r: r.amplification_at(0.1))):
            print(f"   G = {g} GPa, two finest meshes: {name} changes by {abs(f(b) / f(a) - 1) * 100:.1f} %")
        print(f"   G = {g} GPa, two finest meshes: A(450 s) = {a.amplification:.2g} and {b.amplification:.2g} "
              "(both zero to the solver's tolerance)")
    return runs


def lgps_vs_60(out: Path) -> None:
    runs = [(g, d.run(replace(P, shear_modulus=g * 1e9), total_time=T, mesh=d.Mesh(64, 16))) for g in (8, 60)]
    print("6. LGPS (8 GPa) vs 60 GPa, mesh 64x16:")
    for g, r in runs:
        print(f"   G = {g} GPa: tip {r.tip_height * 1e9:.3f} nm, valley {r.valley_height * 1e9:.3f} nm, tip/valley "
              f"{r.ratio:.6f}, A(450 s) = {r.amplification:.2g}, A(1 ms) = {r.amplification_at(1e-3):.3f}, "
              f"A(10 ms) = {r.amplification_at(1e-2):.3f}, A(0.1 s) = {r.amplification_at(0.1):.3g}, "
              f"flat to 10 % at {_fmt(r.time_to(0.1), '.3g')} s")
    path = plot_profiles(runs, out / "dendrite_lgps_vs_60.png",
                         "Li caps under LGPS (8 GPa) and a 60 GPa coating, 0.1 mA/cm2, 450 s (shape about the mean)")
    print(f"   wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two meshes in the convergence study")
    ap.add_argument("--out", default="docs", help="folder for dendrite_lgps_vs_60.png")
    args = ap.parse_args()
    t0 = time.perf_counter()
    faraday()
    halfspace()
    separation_modulus()
    soft = d.run(replace(P, shear_modulus=0.1e9), total_time=T, mesh=d.Mesh(32, 8))
    print(f"   very soft layer (0.1 GPa): amplification {soft.amplification:.3g} at {soft.times[-1]:.3g} s "
          f"({soft.stopped or 'ran to the end'})")
    lgps_vs_60(Path(args.out))
    sweep()
    convergence(args.quick)
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
