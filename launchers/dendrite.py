"""``coatflow dendrite``: Li deposition under a layer of given shear modulus (workflows/analysis/dendrite.py).

    coatflow dendrite --shear-modulus 8 60 [--time 450] [--ion-volume-ratio 0.04] [--kinetics potential] [--out DIR]

prints, for each G, the tip and valley heights at the end (measured from the initial flat Li surface), their
ratio and the roughness amplification (peak-to-valley amplitude at the end / at the start), and writes the
surface profiles at several times to DIR/dendrite_profiles.png. See docs/dendrite.md.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from coatflow.workflows.analysis.dendrite import DendriteParams, DendriteResult, Mesh, run
from coatflow.workflows.errors import CoatflowError


def add_parser(sub) -> None:
    """Register the ``dendrite`` subcommand on the CLI's subparsers."""
    sp = sub.add_parser("dendrite", help="Li deposition under a layer of given shear modulus (2D FE model)")
    sp.add_argument("--shear-modulus", type=float, nargs="+", required=True, metavar="GPA",
                    help="shear modulus of the layer, GPa (one run each)")
    sp.add_argument("--time", type=float, default=450.0, help="growth time, s (default 450)")
    sp.add_argument("--poisson", type=float, default=0.3, help="Poisson ratio of the layer (default 0.3)")
    sp.add_argument("--ion-volume-ratio", type=float, default=DendriteParams().ion_volume_ratio, metavar="V",
                    help="V_Li+ / V_Li, the Li+ partial molar volume in the layer over Li metal's (default "
                         f"{DendriteParams().ion_volume_ratio:g}: an inorganic layer; > 1: the pressure-driven regime)")
    sp.add_argument("--kinetics", choices=("potential", "exchange"), default="potential",
                    help="how the mechanical and capillary term enters Butler-Volmer: a shift of the equilibrium "
                         "potential (default) or a factor on the exchange current (docs/dendrite.md, equation (5))")
    sp.add_argument("--mesh", type=int, nargs=2, default=(32, 8), metavar=("NX", "NY"),
                    help="surface nodes per period and element layers per solid (default 32 8; docs/dendrite.md: mesh convergence)")
    sp.add_argument("--out", default="dendrite", help="folder for dendrite_profiles.png (default ./dendrite)")
    sp.set_defaults(func=handle)


def check_inputs(shear_moduli, total_time: float, poisson: float = 0.3, mesh=(32, 8), ion_volume_ratio: float = 0.0) -> None:
    """One CoatflowError naming the first bad input and its fix."""
    for g in shear_moduli:
        if not (math.isfinite(g) and g > 0):
            raise CoatflowError(f"--shear-modulus {g:g}: a shear modulus must be a positive number of GPa")
    if not (math.isfinite(total_time) and total_time > 0):
        raise CoatflowError(f"--time {total_time:g}: the growth time must be a positive number of seconds")
    if not (math.isfinite(poisson) and -1 < poisson < 0.5):
        raise CoatflowError(f"--poisson {poisson:g}: a Poisson ratio lies between -1 and 0.5")
    if not (math.isfinite(ion_volume_ratio) and ion_volume_ratio >= 0):
        raise CoatflowError(f"--ion-volume-ratio {ion_volume_ratio:g}: a molar volume ratio must be >= 0")
    if mesh[0] < 8 or mesh[1] < 2:
        raise CoatflowError(f"--mesh {mesh[0]} {mesh[1]}: use at least 8 surface nodes and 2 element layers")


def result_line(g_gpa: float, r: DendriteResult) -> str:
    """One row of the printed table."""
    ratio = "inf" if math.isinf(r.ratio) else f"{r.ratio:.3f}"
    note = f"  ({r.stopped})" if r.stopped else ""
    return (f"{g_gpa:>8.3g} {r.tip_height * 1e9:>10.3f} {r.valley_height * 1e9:>11.3f} {ratio:>10} "
            f"{r.amplification:>14.3g} {r.times[-1]:>8.3g}{note}")


HEADER = f"{'G/GPa':>8} {'tip/nm':>10} {'valley/nm':>11} {'tip/valley':>10} {'amplification':>14} {'t_end/s':>8}"


def plot_profiles(results: list[tuple[float, DendriteResult]], path: Path, title: str = "") -> Path:
    """One panel per G: the surface shape h(x) - <h> at the snapshot times (two periods drawn; the legend gives
    the mean height <h>, which grows at the Faraday rate)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.6), squeeze=False, sharey=False)
    for ax, (g, r) in zip(axes[0], results):
        W = r.params.period
        x = np.concatenate([r.x, r.x + W, [2 * W]]) * 1e9
        cmap = plt.get_cmap("viridis")
        for k, (t, h) in enumerate(zip(r.times, r.profiles)):
            y = (np.concatenate([h, h, h[:1]]) - h.mean()) * 1e9
            ax.plot(x, y, color=cmap(k / max(1, len(r.times) - 1)),
                    label=f"t = {t:.3g} s, <h> = {h.mean() * 1e9:.3g} nm")
        ax.set_title(f"G = {g:g} GPa: amplification {r.amplification:.3g}" + (" (stopped)" if r.stopped else ""),
                     fontsize=9)
        ax.set_xlabel("x / nm")
        ax.set_ylabel("h - <h> / nm  (shape about the mean height)")
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def handle(args) -> int:
    check_inputs(args.shear_modulus, args.time, args.poisson, args.mesh, args.ion_volume_ratio)
    mesh = Mesh(nx=args.mesh[0], ny=args.mesh[1])
    base = replace(DendriteParams(), poisson=args.poisson, ion_volume_ratio=args.ion_volume_ratio,
                   kinetics=args.kinetics)
    print(HEADER)
    results = []
    for g in args.shear_modulus:
        r = run(replace(base, shear_modulus=g * 1e9), total_time=args.time, mesh=mesh)
        results.append((g, r))
        print(result_line(g, r), flush=True)
    path = plot_profiles(results, Path(args.out) / "dendrite_profiles.png",
                         f"Li surface under a layer, {args.time:g} s at {base.current_density / 10:g} mA/cm2")
    print(f"wrote {path}")
    return 0
