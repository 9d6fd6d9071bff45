"""Stage 1, database filter: element exclusions always; band gap and E_hull where the source gave them."""

from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar, Literal

from jobflow import Response, job
from pydantic import Field
from pymatgen.core import Composition

from coatflow.workflows.analysis.criteria import excluded_elements
from coatflow.workflows.schemas.funnel import DatabaseFilterDetails, DatabaseFilterResult, FilterCheck
from coatflow.workflows.stages.base import Stage, as_structure, respond

Group = Literal["toxic", "radioactive", "precious"]


def filter_checks(formula: str, properties: dict, band_gap_min: float, e_hull_max: float,
                  exclude: list[str]) -> dict[str, FilterCheck]:
    """Each criterion's check: elements, and the source's band gap and E_hull (eV, eV/atom) where given."""
    bad = excluded_elements(Composition(formula), exclude)
    checks: dict[str, FilterCheck] = {}
    if bad:
        desc = ", ".join(f"{g} {'/'.join(els)}" for g, els in bad.items())
        checks["elements"] = FilterCheck(status="failed", reason=f"contains {desc}")
    else:
        checks["elements"] = FilterCheck(status="passed", excluded_groups=list(exclude))
    for name, key, limit, ok in (("band_gap", "band_gap", band_gap_min, lambda v, t: v >= t),
                                 ("e_hull", "energy_above_hull", e_hull_max, lambda v, t: v <= t)):
        value = properties.get(key)
        if value is None:
            checks[name] = FilterCheck(status="not_computed", reason="no Materials Project value for this candidate")
        else:
            checks[name] = FilterCheck(status="passed" if ok(value, limit) else "failed", value=value, limit=limit)
    return checks


@job(name="database filter", output_schema=DatabaseFilterResult)
def database_filter(ident: dict, structure, prototypes: dict, mp_properties: dict, settings: dict) -> Response:
    """The filter verdict; hands the structure (or the prototype structures) to the next stage."""
    checks = filter_checks(ident["formula"], mp_properties, settings["band_gap_min"], settings["e_hull_max"],
                           settings["exclude"])
    failed = [n for n, c in checks.items() if c.status == "failed"]
    skipped = [n for n, c in checks.items() if c.status == "not_computed"]
    reason = None
    if failed:
        reason = "; ".join(checks[n].reason or f"{n} = {checks[n].value:.3g} outside {checks[n].limit}" for n in failed)
    elif skipped:
        reason = f"{' and '.join(skipped)} skipped: no Materials Project value"
    return respond(DatabaseFilterResult(
        **ident,
        status="failed" if failed else "passed",
        value=mp_properties.get("band_gap"),
        unit="eV" if "band_gap" in mp_properties else None,
        criterion=f"no {'/'.join(settings['exclude'])} elements; gap >= {settings['band_gap_min']} eV; "
                  f"E_hull <= {1000 * settings['e_hull_max']:.0f} meV/atom",
        reason=reason,
        details=DatabaseFilterDetails(checks=checks),
        structure=as_structure(structure),
        structures={pid: as_structure(s) for pid, s in prototypes.items()},
    ))


@dataclasses.dataclass
class DatabaseFilterStage(Stage):
    """database filter: excluded elements; band gap and E_hull from the Materials Project, where it gave them."""

    stage: ClassVar[str] = "database_filter"
    name: str = "database filter"
    band_gap_min: Annotated[float, Field(ge=0, le=20, allow_inf_nan=False, description="eV")] = 0.5
    e_hull_max: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False, description="eV/atom, database E_hull")] = 0.005
    exclude: Annotated[list[Group], Field(description="element groups excluded (toxic, radioactive, precious)")] = \
        dataclasses.field(default_factory=lambda: ["toxic", "radioactive", "precious"])

    def plan(self, planner, plan, upstream: str, verdict):
        cand = plan.candidate
        return planner.gate(plan, planner.key(upstream, self.stage, self.key_settings()), self.stage, None,
                            lambda: database_filter(plan.ident, cand.structure_dict, dict(cand.prototypes),
                                                    cand.mp_properties, self.settings()))
