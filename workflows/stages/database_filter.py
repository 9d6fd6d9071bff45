"""Stage 1, database filter: element exclusions, and the database's band gap and E_hull.

The values come from the Materials Project: live (mp-api, cached) for ``candidates.source: materials_project``,
otherwise from the shipped MP snapshot by formula (``workflows/data/mp_snapshot.json.gz``, docs/mp_snapshot.md),
whatever the source (example set, files, formulas, mp_snapshot).

Rule for a missing value (docs/mp_snapshot.md): a criterion without a database value is ``not_computed`` with
the reason (formula not in the snapshot, no E_hull or no gap for it, or polymorph gaps on both sides of the
threshold), and so is the verdict unless another criterion failed. It is never passed: the verdict says what
is missing. Like every ``not_computed`` verdict it does not stop the later stages, which compute their own.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar, Literal

from jobflow import Response, job
from pydantic import Field
from pymatgen.core import Composition

from coatflow.workflows import reference_data
from coatflow.workflows.analysis.criteria import excluded_elements
from coatflow.workflows.schemas.funnel import DatabaseFilterDetails, DatabaseFilterResult, FilterCheck
from coatflow.workflows.stages.base import Stage, as_structure, respond

Group = Literal["toxic", "radioactive", "precious"]
LIVE_MP = "Materials Project"


def database_properties(formula: str, mp_properties: dict | None = None) -> dict:
    """The database values the filter judges: live MP values when the candidate came from mp-api, else the
    snapshot's row of ``formula`` ({"band_gaps": [...], "energy_above_hull": ...}), each with its source;
    {"missing": why} when the snapshot lacks the formula."""
    if mp_properties:
        return {"source": LIVE_MP, **mp_properties}
    row = reference_data.snapshot_row(formula)
    if row is None:
        return {"source": reference_data.SNAPSHOT_NAME,
                "missing": f"{Composition(formula).reduced_formula} is not in the {reference_data.SNAPSHOT_NAME}"}
    props = {"source": reference_data.SNAPSHOT_NAME, "band_gaps": row.get("band_gaps")}
    if "e_hull" in row:
        props["energy_above_hull"] = row["e_hull"]
    return props


def _gap(properties: dict, limit: float) -> tuple[float | None, str | None]:
    """(band gap judged, None) or (None, why it is missing)."""
    if "band_gaps" in properties:
        return reference_data.polymorph_gap(properties["band_gaps"], limit)
    return properties.get("band_gap"), None


def filter_checks(formula: str, properties: dict, band_gap_min: float, e_hull_max: float,
                  exclude: list[str]) -> dict[str, FilterCheck]:
    """Each criterion's check: elements, and the database's band gap and E_hull (eV, eV/atom).

    ``properties``: {"band_gap": float} or {"band_gaps": [polymorph gaps]}, "energy_above_hull", "source", and
    "missing" when the database lacks the formula (``database_properties``).
    """
    bad = excluded_elements(Composition(formula), exclude)
    checks: dict[str, FilterCheck] = {}
    if bad:
        desc = ", ".join(f"{g} {'/'.join(els)}" for g, els in bad.items())
        checks["elements"] = FilterCheck(status="failed", reason=f"contains {desc}")
    else:
        checks["elements"] = FilterCheck(status="passed", excluded_groups=list(exclude))
    source = properties.get("source", LIVE_MP)
    gap, gap_why = _gap(properties, band_gap_min)
    for name, value, why, limit, ok in (
            ("band_gap", gap, gap_why, band_gap_min, lambda v, t: v >= t),
            ("e_hull", properties.get("energy_above_hull"), None, e_hull_max, lambda v, t: v <= t)):
        if value is None:
            why = properties.get("missing") or why or f"no {name} for {Composition(formula).reduced_formula} in the {source}"
            checks[name] = FilterCheck(status="not_computed", limit=limit, reason=why)
        else:
            checks[name] = FilterCheck(status="passed" if ok(value, limit) else "failed", value=value, limit=limit,
                                       reason=source)
    return checks


@job(name="database filter", output_schema=DatabaseFilterResult)
def database_filter(ident: dict, structure, prototypes: dict, mp_properties: dict, settings: dict) -> Response:
    """The filter verdict; hands the structure (or the prototype structures) to the next stage."""
    checks = filter_checks(ident["formula"], mp_properties, settings["band_gap_min"], settings["e_hull_max"],
                           settings["exclude"])
    failed = [n for n, c in checks.items() if c.status == "failed"]
    missing = [n for n, c in checks.items() if c.status == "not_computed"]
    reason = None
    if failed:
        reason = "; ".join(c.reason if n == "elements" else f"{n} = {c.value:.3g} outside {c.limit} ({c.reason})"
                           for n, c in checks.items() if n in failed)
    elif missing:
        reason = "; ".join(f"{n} missing: {checks[n].reason}" for n in missing)
    gap = checks["band_gap"].value
    return respond(DatabaseFilterResult(
        **ident,
        status="failed" if failed else "not_computed" if missing else "passed",
        value=gap,
        unit="eV" if gap is not None else None,
        criterion=f"no {'/'.join(settings['exclude'])} elements; gap >= {settings['band_gap_min']} eV; "
                  f"E_hull <= {1000 * settings['e_hull_max']:.0f} meV/atom",
        reason=reason,
        details=DatabaseFilterDetails(checks=checks),
        structure=as_structure(structure),
        structures={pid: as_structure(s) for pid, s in prototypes.items()},
    ))


@dataclasses.dataclass
class DatabaseFilterStage(Stage):
    """database filter: excluded elements; band gap and E_hull from the Materials Project (live, or the shipped
    snapshot by formula); a missing value makes the verdict not_computed."""

    stage: ClassVar[str] = "database_filter"
    name: str = "database filter"
    band_gap_min: Annotated[float, Field(ge=0, le=20, allow_inf_nan=False, description="eV")] = 0.5
    e_hull_max: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False, description="eV/atom, database E_hull")] = 0.005
    exclude: Annotated[list[Group], Field(description="element groups excluded (toxic, radioactive, precious)")] = \
        dataclasses.field(default_factory=lambda: ["toxic", "radioactive", "precious"])

    def plan(self, planner, plan, upstream: str, verdict):
        cand = plan.candidate
        props = database_properties(cand.formula, cand.mp_properties)
        plan.filter_verdict = planner.gate(
            plan, planner.key(upstream, self.stage, self.key_settings(), props), self.stage, None,
            lambda: database_filter(plan.ident, cand.structure_dict, dict(cand.prototypes), props, self.settings()))
        return plan.filter_verdict
