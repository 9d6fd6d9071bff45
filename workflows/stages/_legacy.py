"""Stage jobs: each turns calculator output into a StageResult and stops the funnel on failure.

A failed stage returns ``Response(stop_children=True)``, so no expensive job that depends on it
runs, both under ``run_locally`` and under FireWorks.
"""

from __future__ import annotations

from typing import Any

from jobflow import Response, job
from pymatgen.core import Composition, Structure

from coatflow.workflows.criteria import excluded_elements
from coatflow.workflows.schemas import StageResult


def _respond(result: StageResult) -> Response:
    return Response(output=result, stop_children=not result.passed)


def _get(doc: Any, *path: str):
    """Field lookup that works on task documents and on their dict form."""
    for key in path:
        if doc is None:
            return None
        doc = doc.get(key) if isinstance(doc, dict) else getattr(doc, key, None)
    return doc


def _as_structure(s) -> Structure | None:
    if s is None or isinstance(s, Structure):
        return s
    return Structure.from_dict(s)


@job(name="database filter")
def database_filter(ident: dict, structure, prototypes: dict, mp_properties: dict, thresholds: dict) -> Response:
    """Element exclusions always; band gap and E_hull only where the Materials Project gave them."""
    bad = excluded_elements(Composition(ident["formula"]), thresholds["exclude"])
    checks: dict[str, dict] = {}
    if bad:
        desc = ", ".join(f"{g} {'/'.join(els)}" for g, els in bad.items())
        checks["elements"] = {"status": "failed", "reason": f"contains {desc}"}
    else:
        checks["elements"] = {"status": "passed", "excluded_groups": thresholds["exclude"]}
    for name, key, limit, ok in (
        ("band_gap", "band_gap", thresholds["band_gap_min"], lambda v, t: v >= t),
        ("e_hull", "energy_above_hull", thresholds["e_hull_max"], lambda v, t: v <= t),
    ):
        value = mp_properties.get(key)
        if value is None:
            checks[name] = {"status": "not_computed", "reason": "no Materials Project value for this candidate"}
        else:
            checks[name] = {"status": "passed" if ok(value, limit) else "failed", "value": value, "limit": limit}
    failed = [n for n, c in checks.items() if c["status"] == "failed"]
    skipped = [n for n, c in checks.items() if c["status"] == "not_computed"]
    reason = None
    if failed:
        reason = "; ".join(checks[n].get("reason") or f"{n} = {checks[n]['value']:.3g} outside {checks[n]['limit']}" for n in failed)
    elif skipped:
        reason = f"{' and '.join(skipped)} skipped: no Materials Project value"
    return _respond(
        StageResult(
            **ident,
            stage="database_filter",
            status="failed" if failed else "passed",
            value=mp_properties.get("band_gap"),
            unit="eV" if "band_gap" in mp_properties else None,
            criterion=f"no {'/'.join(thresholds['exclude'])} elements; gap >= {thresholds['band_gap_min']} eV; "
            f"E_hull <= {1000 * thresholds['e_hull_max']:.0f} meV/atom",
            reason=reason,
            details={"checks": checks},
            structure=_as_structure(structure),
            structures={pid: _as_structure(s) for pid, s in prototypes.items()},
        )
    )


def _relax_summary(task_doc) -> dict:
    structure = _as_structure(_get(task_doc, "output", "structure") or _get(task_doc, "structure"))
    energy = _get(task_doc, "output", "energy")
    return {
        "structure": structure,
        "energy_per_atom": None if energy is None else energy / len(structure),
        "converged": _get(task_doc, "is_force_converged") is not False,
    }


@job(name="record bulk relaxation")
def record_relaxation(ident: dict, task_doc, backend: str, relax_uuid: str) -> Response:
    r = _relax_summary(task_doc)
    status = "passed" if r["converged"] else "failed"
    return _respond(
        StageResult(
            **ident,
            stage="bulk_relax",
            status=status,
            value=r["energy_per_atom"],
            unit="eV/atom",
            criterion="forces converged",
            reason=None if r["converged"] else "relaxation did not converge",
            backend=backend,
            task_uuids=[relax_uuid],
            details={"volume": r["structure"].volume, "nsites": len(r["structure"])},
            structure=r["structure"],
        )
    )


@job(name="select lowest-energy polymorph")
def select_polymorph(ident: dict, task_docs: list, prototype_ids: list[str], backend: str, relax_uuids: list[str]) -> Response:
    """For a predicted candidate: keep the relaxed prototype substitution with the lowest energy."""
    summaries = [_relax_summary(d) for d in task_docs]
    energies = {pid: r["energy_per_atom"] for pid, r in zip(prototype_ids, summaries)}
    ranked = sorted(
        (r["energy_per_atom"], pid, i) for i, (pid, r) in enumerate(zip(prototype_ids, summaries)) if r["converged"]
    )
    if not ranked:
        return _respond(
            StageResult(**ident, stage="bulk_relax", status="failed", reason="no prototype relaxation converged",
                        backend=backend, task_uuids=relax_uuids, details={"prototype_energies": energies})
        )
    e, pid, i = ranked[0]
    r = summaries[i]
    return _respond(
        StageResult(
            **ident,
            stage="bulk_relax",
            status="passed",
            value=e,
            unit="eV/atom",
            criterion="forces converged; lowest-energy prototype",
            backend=backend,
            task_uuids=[relax_uuids[i]],
            details={"prototype": pid, "prototype_energies": energies, "volume": r["structure"].volume,
                     "nsites": len(r["structure"])},
            structure=r["structure"],
        )
    )
