"""Stage 6, shear modulus: G_VRH from the elastic tensor.

The anode-coating paper's reason for the gate is that a stiff coating suppresses Li dendrites (its 35 GPa
threshold). That is the paper's claim, not this project's finding: with the sources' mechanics (Monroe & Newman
2005 as generalised by Ahmad & Viswanathan 2017), a layer whose Li+ takes little volume (v = V_Li+/V_Li << 1,
every inorganic coating) is stable only when softer than about 0.7 G_Li, and a stiffer one roughens faster
(docs/dendrite.md; the optional ``dendrite_suppression`` stage shows it per candidate).

The elastic tensor comes from the backend's elastic Maker (makers/elastic.py: atomate2's force-field or
VASP elastic flow), the moduli from workflows/analysis/elastic.py, the verdict document from
workflows/schemas/elastic.py (``ShearModulusResult.from_elastic_doc``, after atomate2's
``ElasticDocument.from_stresses``).

The mlip backend runs one of two models (``mlip_model``: SevenNet-0 by default, or CHGNet; docs/shear_models.md
compares them with DFT). Where the shipped Materials Project snapshot has a G_VRH for the candidate's formula, the
verdict carries it beside the model's (``details.g_vrh_dft``) and the table shows it; it never decides.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar, Literal

from jobflow import Response, job
from pydantic import Field

from coatflow.workflows.reference_data import snapshot_row
from coatflow.workflows.schemas.elastic import ShearModulusResult
from coatflow.workflows.stages.base import Stage


def mp_g_vrh(formula: str) -> dict:
    """MP's PBE G_VRH of ``formula`` from the shipped snapshot (``reference_data.snapshot_row``), as the verdict's
    details take it; {} when the snapshot has no G_VRH for it.

    ``g_vrh_dft``: CrabNet's one value per formula (``g_vrh_crabnet``) when present: one of MP's polymorphs, the
    ground state where that can be checked (MgO 119 GPa rocksalt, LiAlO2 52 GPa gamma); else matbench's value when
    it has one polymorph, else the median over its polymorphs. ``g_vrh_dft_polymorphs``: every polymorph's value
    in matbench (within 150 meV/atom of the hull) when there are several.
    """
    row = snapshot_row(formula) or {}
    poly = sorted(row.get("g_vrh") or [])
    if row.get("g_vrh_crabnet") is not None:
        value = row["g_vrh_crabnet"]
    elif poly:
        mid = len(poly) // 2
        value = poly[mid] if len(poly) % 2 else (poly[mid - 1] + poly[mid]) / 2
    else:
        return {}
    return {"g_vrh_dft": round(value, 2), **({"g_vrh_dft_polymorphs": poly} if len(poly) > 1 else {})}


@job(name="shear modulus verdict", output_schema=ShearModulusResult)
def shear_modulus_verdict(ident: dict, elastic_doc, structure, g_min: float, backend: str, uuid: str,
                          dft: dict | None = None) -> Response:
    r = ShearModulusResult.from_elastic_doc(ident, elastic_doc, g_min=g_min, backend=backend, task_uuids=[uuid],
                                            structure=structure, dft=dft)
    return Response(output=r, stop_children=not r.passed)


@dataclasses.dataclass
class ShearModulusStage(Stage):
    """shear modulus: Voigt-Reuss-Hill G from the elastic tensor."""

    stage: ClassVar[str] = "shear_modulus"
    name: str = "shear modulus"
    g_vrh_min: Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False, description="GPa")] = 35.0
    backend: Annotated[Literal["mlip", "vasp"], Field(description="elastic tensor: mlip | vasp")] = "mlip"
    mlip_model: Annotated[Literal["chgnet", "sevennet"], Field(
        description="model of the mlip backend: sevennet (SevenNet-0) | chgnet (CHGNet 0.3.0); docs/shear_models.md"
    )] = "sevennet"  # closer to PBE than CHGNet at the threshold (docs/shear_models.md)

    @property
    def calculator(self) -> str:
        """The backend as the registry takes it: ``mlip:<model>`` for the mlip backend."""
        return f"mlip:{self.mlip_model}" if self.backend == "mlip" else self.backend

    @classmethod
    def note(cls, details: dict) -> str:
        """MP's DFT G_VRH of the formula beside the model's, when the snapshot has one."""
        if details.get("g_vrh_dft") is None:
            return ""
        poly = details.get("g_vrh_dft_polymorphs")
        span = f" [{min(poly):.0f}-{max(poly):.0f}]" if poly else ""
        return f" (DFT {details['g_vrh_dft']:.0f}{span})"

    def calculators(self) -> list[tuple[str, str]]:
        return [("elastic", self.calculator)]

    def plan(self, planner, plan, upstream: str, verdict):
        maker = planner.maker("elastic", self.calculator)
        # the key names the backend only: the model is in the Maker's settings (CHGNet keys are unchanged)
        key = planner.calc_key(upstream, "elastic", self.backend, maker)
        out, uuid = planner.add(plan, key, self.stage, "elastic", self.calculator,
                                lambda: maker.make(verdict.structure))
        dft = mp_g_vrh(plan.candidate.formula)
        return planner.gate(plan, planner.key(key, "verdict", self.g_vrh_min, dft), self.stage, self.calculator,
                            lambda: shear_modulus_verdict(plan.ident, out, verdict.structure, self.g_vrh_min,
                                                          self.calculator, uuid, dft))
