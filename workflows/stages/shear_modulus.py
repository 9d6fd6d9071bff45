"""Stage 6, shear modulus: G_VRH from the elastic tensor (a stiff coating suppresses Li dendrites)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from coatflow.workflows.stages.base import Stage


@dataclasses.dataclass
class ShearModulusStage(Stage):
    """shear modulus: Voigt-Reuss-Hill G from the elastic tensor."""

    stage: ClassVar[str] = "shear_modulus"
    name: str = "shear modulus"
    g_vrh_min: Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False, description="GPa")] = 35.0
    backend: Annotated[Literal["mlip", "vasp"], Field(description="elastic tensor: mlip (CHGNet) | vasp")] = "mlip"

    def plan(self, planner, plan, upstream: str, verdict):
        from coatflow.workflows.elastic import plan_shear_modulus  # TEMPORARY: moves here (recut step 3)

        return plan_shear_modulus(planner, plan, upstream, verdict)
