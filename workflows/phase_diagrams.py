"""What the three phase-diagram stages share: the energies of the candidate and its competing phases.

Energies come from one scale only (``thermo.entries``): ``local`` relaxes the candidate and the
bundled competing phases of its chemical system (data/competing_phases.json.gz) on ``bulk_relax.backend``;
``mp`` uses Materials Project MP2020 entries (MP_API_KEY, cached in the ``cache`` store); ``mp_snapshot``
uses the shipped MP formation energies by formula (data/mp_snapshot.json.gz, docs/mp_snapshot.md), no
network and no relaxation. ``mp`` and ``mp_snapshot`` are both *database* scales: the candidate is the
database's own entry, found by its id, and the same code handles both. The stages
(workflows/stages/phase_stability.py, stability_window.py, interfacial_reactions.py) and the defect
programme (workflows/defects.py) plan their inputs here; the physics is workflows/analysis/thermo.py.
"""

from __future__ import annotations

from dataclasses import replace

from jobflow import Flow, job
from pymatgen.core import Composition, Element, Structure
from pymatgen.entries.compatibility import MaterialsProject2020Compatibility

from coatflow.workflows import reference_data
from coatflow.workflows.analysis import thermo
from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.reference_data import competing_phases, phases_for  # noqa: F401 - imported from here too
from coatflow.workflows.schemas.thermo import RelaxedEnergy

LOCAL_SCALE = "CHGNet+MP2020"


@job(name="pass structure")
def pass_structure(_after, structure):
    """Makes a competing-phase relaxation wait for (and stop with) the candidate's previous stage."""
    return structure


def relax_after(maker, after, structure) -> Flow:
    """``maker``'s job on ``structure`` as a child of ``after`` (an earlier stage's output): it waits for it, and
    does not run when that stage stops the candidate's funnel."""
    g = pass_structure(after, structure)
    r = maker.make(g.output)
    return Flow([g, r], output=r.output)


def local_scale(backend: str) -> str:
    return {"mlip": LOCAL_SCALE}.get(backend, f"{backend.upper()}+MP2020")


def entries_on_scale(cand_doc, phase_docs: dict, source: dict | None = None) -> tuple:
    """(candidate entry, competing entries) on one scale.

    ``source`` is {"kind": "local", "backend": ...} (default: CHGNet relaxations of the bundled phases) or a
    database scale (``database_source``): {"kind": "mp", "entries": [...], "material_id": ...} (cached MP2020
    entries; the candidate is MP's own entry of that material, or its VASP relaxation with MP2020
    corrections) or {"kind": "mp_snapshot", "elements": [...], "material_id": ...} (the shipped formation
    energies; the candidate is its formula's entry). Raises CoatflowError when the candidate has no energy on
    that scale.
    """
    source = source or {"kind": "local", "backend": "mlip"}
    if source["kind"] in DATABASE_KINDS:
        return database_entries_on_scale(cand_doc, source)
    scale = local_scale(source["backend"])

    def entry(doc, eid):
        r = RelaxedEnergy.from_task_doc(doc)
        return thermo.mp2020_entry(r.structure.composition, r.energy, scale, entry_id=eid)
    return entry(cand_doc, "candidate"), [entry(d, pid) for pid, d in phase_docs.items()]


#: thermo.entries values whose energies come from a database rather than this campaign's relaxations
DATABASE_KINDS = ("mp", "mp_snapshot")


def formula_level(config) -> bool:
    """Whether the phase-diagram stages need only the candidate's formula: a database scale (``mp``,
    ``mp_snapshot``), except ``mp`` with a VASP relaxation, which relaxes the candidate again."""
    kind = config.thermo.entries
    return kind in DATABASE_KINDS and (kind, config.bulk_relax.backend) != ("mp", "vasp")


def source_entries(source: dict) -> list:
    """The competing entries of a database source: decoded MP2020 entries, or the snapshot's of its elements."""
    if source["kind"] == "mp_snapshot":
        return reference_data.snapshot_entries(source["elements"])
    return reference_data.decode_entries(source["entries"])


def database_entries_on_scale(cand_doc, source: dict) -> tuple:
    if source.get("error"):
        raise CoatflowError(source["error"])
    entries = source_entries(source)
    own = [e for e in entries if e.data.get("material_id") == source.get("material_id")]
    if own:  # the candidate is a database material: its own entry, so E_hull is the database's
        cand = own[0].copy()
        cand.entry_id = "candidate"
        return cand, [e for e in entries if e is not own[0]]
    if source["kind"] == "mp_snapshot":
        raise CoatflowError(f"{source['material_id'].split(':', 1)[1]} has no formation energy in the "
                            f"{reference_data.SNAPSHOT_NAME} (thermo.entries: mp_snapshot works by formula)")
    if source.get("backend") == "vasp" and cand_doc is not None:
        raw = cand_doc.get("entry") if isinstance(cand_doc, dict) else getattr(cand_doc, "entry", None)
        raw = reference_data.decode_entries([raw])[0] if isinstance(raw, dict) else raw
        cand = MaterialsProject2020Compatibility().process_entry(raw, on_error="ignore") if raw else None
        if cand is not None:
            cand.entry_id, cand.data["energy_scale"] = "candidate", thermo.MP_SCALE
            return cand, entries
    raise CoatflowError(f"no MP2020-scale energy for the candidate: it is not a Materials Project material and "
                        f"was relaxed with '{source.get('backend')}' (thermo.entries: mp needs bulk_relax.backend: vasp)")


def backend_of(source) -> str:
    kind = (source or {}).get("kind")
    return {"mp": "materials_project", "mp_snapshot": "mp_snapshot"}.get(kind) or (source or {}).get("backend", "mlip")


def phase_inputs(planner, plan, upstream, verdict, elements=None, extra: dict | None = None):
    """(candidate relax output, {phase id: relax output}, uuids, entry source) for one stage.

    ``thermo.entries: local``: the relax backend relaxes the candidate and the bundled phases of
    ``elements`` (default: the candidate's chemical system), each added to a plan once; ``extra`` ({phase id:
    structure dict}) adds a stage's own bundled phases (the cathode programme's, workflows/cathode_phases.py).
    ``thermo.entries: mp`` / ``mp_snapshot``: database entries (``database_source``); only a VASP candidate is
    relaxed again, and only for ``mp`` (the snapshot has no per-structure energies).
    """
    backend = planner.config.bulk_relax.backend
    maker = planner.maker("relax", backend)
    elements = elements or Composition(plan.candidate.formula).elements
    memo = plan.__dict__.setdefault("_thermo_memo", {})
    kind = planner.config.thermo.entries
    if "candidate" not in memo:
        memo["candidate"] = (None, None) if formula_level(planner.config) else \
            planner.add(plan, planner.calc_key(upstream, "thermo-relax", backend, maker), "phase_stability", "relax",
                        backend, lambda: maker.make(verdict.structure))
    if kind in DATABASE_KINDS:
        return (memo["candidate"][0], {}, [u for u in [memo["candidate"][1]] if u],
                database_source(planner, plan, elements, kind))
    outs, uuids = {}, [memo["candidate"][1]]
    for pid, sd in {**phases_for(elements), **(extra or {})}.items():
        if pid not in memo:
            m = replace(maker, relax_cell=False) if sd.get("molecule") else maker  # a dimer in a box

            def factory(sd=sd, m=m):
                return relax_after(m, verdict.structure, Structure.from_dict(sd))
            memo[pid] = planner.add(plan, phase_key(planner, pid, backend, m), "phase_stability", "relax", backend,
                                    factory)
        outs[pid] = memo[pid][0]
        uuids.append(memo[pid][1])
    return memo["candidate"][0], outs, uuids, {"kind": "local", "backend": backend}


def database_source(planner, plan, elements, kind: str = "mp") -> dict:
    """The entry source of a database scale: MP2020 entries of ``elements`` from the cache (or mp-api), or the
    reason they are missing; for ``mp_snapshot`` the elements and the snapshot's version (entries load at run
    time from the shipped file)."""
    src = {"kind": kind, "backend": planner.config.bulk_relax.backend, "material_id": plan.candidate.material_id}
    if kind == "mp_snapshot":
        return {**src, "material_id": reference_data.snapshot_id(plan.candidate.formula),
                "elements": sorted(Element(x).symbol for x in elements), "state": reference_data.snapshot_version()}
    try:
        entries = reference_data.mp_entries(elements, planner.cache)
    except CoatflowError as exc:
        return {**src, "error": str(exc)}
    return {**src, "entries": [e.as_dict() for e in entries]}


def phase_key(planner, pid: str, backend: str, maker) -> str:
    """Job key of a competing phase's relaxation: shared by every candidate and campaign."""
    return planner.calc_key("competing", pid, backend, maker)


def stage_key(planner, upstream, stage, *extra):
    """A phase-diagram stage's key: its energies' scale and entry set, then the stage's own settings
    (``extra``); a verdict left 'not computed' for missing MP entries is redone once they are there."""
    return planner.key(upstream, stage, planner.config.bulk_relax.backend, planner.config.thermo.entries, *extra)


def entries_state(source: dict):
    """What a verdict's key takes from its entry source: the error, the snapshot's version, or the entry count."""
    return source.get("error") or source.get("state") or len(source.get("entries", ()))


