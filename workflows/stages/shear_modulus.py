"""Stage 6, shear modulus: G_VRH from the elastic tensor (a stiff coating suppresses Li dendrites).

The elastic tensor comes from the backend's elastic Maker (makers/elastic.py: atomate2's force-field or
VASP elastic flow), the moduli from workflows/analysis/elastic.py, the verdict document from
workflows/schemas/elastic.py (``ShearModulusResult.from_elastic_doc``, after atomate2's
``ElasticDocument.from_stresses``).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar, Literal

from jobflow import Response, job
from pydantic import Field

from coatflow.workflows.schemas.elastic import ShearModulusResult
from coatflow.workflows.stages.base import Stage


@job(name="shear modulus verdict", output_schema=ShearModulusResult)
def shear_modulus_verdict(ident: dict, elastic_doc, structure, g_min: float, backend: str, uuid: str) -> Response:
    r = ShearModulusResult.from_elastic_doc(ident, elastic_doc, g_min=g_min, backend=backend, task_uuids=[uuid],
                                            structure=structure)
    return Response(output=r, stop_children=not r.passed)


@dataclasses.dataclass
class ShearModulusStage(Stage):
    """shear modulus: Voigt-Reuss-Hill G from the elastic tensor."""

    stage: ClassVar[str] = "shear_modulus"
    name: str = "shear modulus"
    g_vrh_min: Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False, description="GPa")] = 35.0
    backend: Annotated[Literal["mlip", "vasp"], Field(description="elastic tensor: mlip (CHGNet) | vasp")] = "mlip"

    def calculators(self) -> list[tuple[str, str]]:
        return [("elastic", self.backend)]

    def plan(self, planner, plan, upstream: str, verdict):
        maker = planner.maker("elastic", self.backend)
        key = planner.calc_key(upstream, "elastic", self.backend, maker)
        out, uuid = planner.add(plan, key, self.stage, "elastic", self.backend, lambda: maker.make(verdict.structure))
        return planner.gate(plan, planner.key(key, "verdict", self.g_vrh_min), self.stage, self.backend,
                            lambda: shear_modulus_verdict(plan.ident, out, verdict.structure, self.g_vrh_min,
                                                          self.backend, uuid))
