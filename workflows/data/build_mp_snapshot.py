"""Regenerate ``mp_snapshot.json.gz``: Materials Project values by formula, from the crabnet 2.0.8 wheel.

    python3 workflows/data/build_mp_snapshot.py [--wheel crabnet-2.0.8-py3-none-any.whl]

Without ``--wheel`` the wheel is fetched with ``pip download --no-deps --only-binary=:all: --python-version 3.9
crabnet==2.0.8`` (it declares Python < 3.11, so it is downloaded, never installed). Its CSVs (``formula,target``,
MIT-licensed package, data from the Materials Project under CC-BY-4.0) are read straight from the zip:

- ``data/matbench/mp_e_form.csv``: formation energy per atom, one row per MP material (matbench v0.1,
  retrieved 2 April 2019, entries with E_form > 2.5 eV/atom removed);
- ``data/matbench/mp_gap.csv``: PBE band gap per MP material (same retrieval, entries > 150 meV above the hull removed);
- ``data/matbench/elasticity_log10(G_VRH).csv``: log10 of G_VRH (GPa) per MP material (same retrieval and cut);
- ``data/benchmark_data/mp_e_hull/{train,val,test}.csv``: E_hull per formula (CrabNet's benchmark set);
- ``data/benchmark_data/mp_shear_modulus/{train,val,test}.csv``: G_VRH (GPa) per formula (CrabNet's benchmark set).

(``data/matbench_cv/*`` are cross-validation splits of the same matbench sets with polymorphs averaged per
formula: not used.) Formulas are keyed by pymatgen's reduced formula. Kept: every Li-M-O ternary (Li, O and
exactly one other element), and every formula whose elements lie within a chemical system the campaign builds a
phase diagram of: Li-M-O for every such M, and the same for every compound of the bundled example set (with Li
added), each also joined with the elements of each of the five default electrolytes (Li10GeP2S12, Li6PS5Cl,
Li7La3Zr2O12, LiTi2(PO4)3, LiNbO3); the electrolytes' own systems; Li-P-O-N (LiPON); and the cathode-coating
programme's systems (cathode_coating_set.yaml): each coating joined with each cathode (Li-Co/Ni/Mn-O, both
states) and with each sulfide electrolyte. docs/mp_snapshot.md describes the columns and the counts.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import math
import re
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path

from pymatgen.core import Composition

HERE = Path(__file__).resolve().parent
OUT = HERE / "mp_snapshot.json.gz"
CRABNET = "crabnet==2.0.8"
ELECTROLYTES = ("Li10GeP2S12", "Li6PS5Cl", "Li7La3Zr2O12", "LiTi2(PO4)3", "LiNbO3")
EXTRA_SYSTEMS = (("Li", "P", "O", "N"),)  # LiPON (Li2PO2N), whose published window the tests check

SOURCES = {
    "e_form": ["crabnet/data/matbench/mp_e_form.csv"],
    "gap": ["crabnet/data/matbench/mp_gap.csv"],
    "log_g_vrh": ["crabnet/data/matbench/elasticity_log10(G_VRH).csv"],
    "e_hull": [f"crabnet/data/benchmark_data/mp_e_hull/{s}.csv" for s in ("train", "val", "test")],
    "g_vrh_crabnet": [f"crabnet/data/benchmark_data/mp_shear_modulus/{s}.csv" for s in ("train", "val", "test")],
}

COLUMNS = {
    "e_form": "eV/atom, formation energy of the lowest-energy polymorph (matbench mp_e_form, MP 2019-04-02)",
    "n_e_form": "number of MP materials (polymorphs) of the formula in mp_e_form",
    "e_hull": "eV/atom, MP energy above the hull, one value per formula (CrabNet benchmark mp_e_hull)",
    "band_gaps": "eV, PBE band gaps of every polymorph in matbench mp_gap (within 150 meV/atom of the hull), ascending",
    "g_vrh": "GPa, G_VRH of every polymorph in matbench log10(G_VRH) (within 150 meV/atom of the hull), ascending",
    "g_vrh_crabnet": "GPa, G_VRH, one value per formula (CrabNet benchmark mp_shear_modulus)",
}


def fetch_wheel(dest: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.9", CRABNET, "-d", str(dest)], check=True)
    return next(dest.glob("crabnet-*.whl"))


def read_rows(zf: zipfile.ZipFile, paths: list[str]) -> list[tuple[str, float]]:
    """(formula as written, target) of every row of the CSVs ``paths`` of the wheel (splits merged)."""
    rows = []
    for p in paths:
        with zf.open(p) as f:
            rows += [(r["formula"], float(r["target"])) for r in csv.DictReader(io.TextIOWrapper(f, "utf-8"))]
    return rows


def elements_of(formula: str) -> frozenset[str]:
    """The element symbols written in ``formula`` (a regex: fast enough for every row of the wheel)."""
    return frozenset(re.findall(r"[A-Z][a-z]?", formula))


def is_li_m_o(formula: str) -> bool:
    els = elements_of(formula)
    return len(els) == 3 and {"Li", "O"} <= els


def example_formulas() -> list[str]:
    import yaml

    from coatflow.workflows.candidates import EXAMPLE_PREDICTED_FORMULAS, structure_from_wyckoff
    entries = yaml.safe_load((HERE / "example_set.yaml").read_text())["compounds"]
    return [structure_from_wyckoff(e).composition.reduced_formula for e in entries] + list(EXAMPLE_PREDICTED_FORMULAS)


def systems(ternaries, extra_formulas) -> set[frozenset[str]]:
    """The chemical systems whose every formula is kept."""
    partners = [elements_of(f) for f in ELECTROLYTES]
    out = {frozenset(s) for s in EXTRA_SYSTEMS} | {p | {"Li"} for p in partners}
    for f in [*ternaries, *extra_formulas]:
        base = elements_of(f) | {"Li"}
        out.add(base)
        out |= {base | p for p in partners}
    return out


def cathode_coating_systems() -> set[frozenset[str]]:
    """The cathode-coating programme's pairs (docs/cathode_coating.md): coating | cathode, coating | electrolyte."""
    import yaml

    data = yaml.safe_load((HERE / "cathode_coating_set.yaml").read_text())
    partners = [elements_of(s) for c in data["cathodes"].values() for s in c.values()]
    partners += [elements_of(f) for f in data["electrolytes"]]
    return {elements_of(c) | p | {"Li"} for c in data["coatings"] for p in partners} | {p | {"Li"} for p in partners}


def build(wheel: Path) -> dict:
    with zipfile.ZipFile(wheel) as zf:
        lines = {k: read_rows(zf, paths) for k, paths in SOURCES.items()}
    written = {f for rows in lines.values() for f, _ in rows}
    ternaries = sorted(f for f in written if is_li_m_o(f))
    chemsys = systems(ternaries, example_formulas()) | cathode_coating_systems()
    kept = {f for f in written if any(elements_of(f) <= s for s in chemsys)}
    reduced = {f: Composition(f).reduced_formula for f in kept}  # one key per formula, however written
    raw: dict[str, dict[str, list[float]]] = {k: defaultdict(list) for k in lines}
    for k, rows in lines.items():
        for f, v in rows:
            if f in reduced:
                raw[k][reduced[f]].append(v)
    keep = sorted(set(reduced.values()))
    rows = {}
    for f in keep:
        r = {}
        if f in raw["e_form"]:
            r["e_form"] = round(min(raw["e_form"][f]), 6)
            r["n_e_form"] = len(raw["e_form"][f])
        if f in raw["e_hull"]:
            (v,) = raw["e_hull"][f]
            r["e_hull"] = round(v, 6)
        if f in raw["gap"]:
            r["band_gaps"] = sorted(round(v, 4) for v in raw["gap"][f])
        if f in raw["log_g_vrh"]:
            r["g_vrh"] = sorted(round(10 ** v, 2) for v in raw["log_g_vrh"][f])
        if f in raw["g_vrh_crabnet"]:
            (v,) = raw["g_vrh_crabnet"][f]
            r["g_vrh_crabnet"] = round(v, 2)
        rows[f] = r
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    return {
        "source": {
            "package": CRABNET, "wheel": wheel.name, "wheel_sha256": sha, "files": SOURCES,
            "licence": "crabnet: MIT; data: Materials Project, CC-BY-4.0",
            "mp_version": "matbench v0.1 sets retrieved from the Materials Project on 2019-04-02; "
                          "CrabNet benchmark sets (mp_e_hull, mp_shear_modulus): date not recorded in the wheel",
            "regenerate": "python3 workflows/data/build_mp_snapshot.py",
        },
        "columns": COLUMNS,
        "li_m_o_ternaries": sum(is_li_m_o(f) for f in keep),
        "formulas": rows,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", type=Path, help="crabnet-2.0.8-py3-none-any.whl (default: pip download it)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(Path(tmp))
        snap = build(wheel)
    text = json.dumps(snap, sort_keys=True, separators=(",", ":"))
    with gzip.GzipFile(args.out, "wb", mtime=0) as f:  # mtime 0: the same data gives the same bytes
        f.write(text.encode())
    rows = snap["formulas"]
    tern = [f for f in rows if is_li_m_o(f)]
    print(f"{args.out}: {len(rows)} formulas, {len(tern)} Li-M-O ternaries "
          f"({sum('e_hull' in rows[f] for f in tern)} with E_hull, {sum('band_gaps' in rows[f] for f in tern)} "
          f"with a gap, {sum('g_vrh' in rows[f] or 'g_vrh_crabnet' in rows[f] for f in tern)} with G_VRH)")
    assert not any(math.isnan(v) for r in rows.values() for v in r.values() if isinstance(v, float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
