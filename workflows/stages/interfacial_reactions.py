"""Stage 5, interfacial reactions: the coating against Li metal and each solid electrolyte."""

from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field
from pymatgen.core import Composition, Element

from coatflow.workflows.stages.base import Stage


def _formulas(formulas: list[str]) -> list[str]:
    for f in formulas:
        try:
            ok = all(isinstance(el, Element) for el in Composition(f).elements)
        except Exception:  # noqa: BLE001 - pymatgen raises several types for bad formulas
            ok = False
        if not ok:  # pymatgen reads unknown symbols such as 'Xq' as dummy species
            raise ValueError(f"'{f}' is not a chemical formula")
    return formulas


@dataclasses.dataclass
class InterfacialReactionsStage(Stage):
    """interfacial reactions: no metallic or mixed-conducting product with Li or any listed electrolyte."""

    stage: ClassVar[str] = "interfacial_reactions"
    name: str = "interfacial reactions"
    electrolytes: Annotated[list[str], Field(description="partners besides Li metal"), AfterValidator(_formulas)] = \
        dataclasses.field(default_factory=lambda: ["Li10GeP2S12", "Li6PS5Cl", "Li7La3Zr2O12", "LiTi2(PO4)3", "LiNbO3"])
    insulator_gap_min: Annotated[float, Field(ge=0, le=20, allow_inf_nan=False,
                                              description="eV, products below this count as electronic conductors")] = 0.5
    band_gap_backend: Annotated[Literal["gpaw", "vasp"], Field(
        description="band gaps of products without a shipped one (gpaw | vasp)")] = "gpaw"

    @classmethod
    def note(cls, details: dict) -> str:
        """How many coating pairs were computed (Li | electrolyte pairs are informational)."""
        coating = [v for k, v in (details.get("pairs") or {}).items() if not k.startswith("Li |")]
        return f" {sum(v['status'] == 'computed' for v in coating)}/{len(coating)} pairs" if coating else ""

    def calculators(self) -> list[tuple[str, str]]:
        return [("band_gap", self.band_gap_backend)]

    def plan(self, planner, plan, upstream: str, verdict):
        from coatflow.workflows.thermo_stages import plan_interfacial_reactions  # TEMPORARY (recut step 3)

        return plan_interfacial_reactions(planner, plan, upstream, verdict)
