"""Shear-modulus stage verdict: G_VRH of the elastic tensor against the threshold."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field
from pymatgen.core import Structure

from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.analysis.elastic import vrh_moduli
from coatflow.workflows.schemas.stage import StageResult


class ShearModulusDetails(BaseModel):
    """What the shear_modulus verdict records besides its value."""

    k_vrh: float | None = Field(None, description="GPa, Voigt-Reuss-Hill bulk modulus")
    g_vrh: float | None = Field(None, description="GPa, the fit's G_VRH (meaningless when not positive definite)")
    lowest_eigenvalue: float | None = Field(None, description="GPa, of the 6x6 Voigt matrix; <= 0: not positive definite")
    g_vrh_dft: float | None = Field(None, description="GPa, the Materials Project's PBE G_VRH of the formula (shipped "
                                    "MP snapshot, stages/shear_modulus.py mp_g_vrh), beside the model's; never decides")
    g_vrh_dft_polymorphs: list[float] | None = Field(None, description="GPa, MP's G_VRH of each polymorph of the formula, "
                                                     "when there are several")


def _ieee_tensor(elastic_doc: Any):
    """``elastic_tensor.ieee_format`` of an atomate2 ElasticDocument, stored (dict) or fresh (object)."""
    et = elastic_doc.get("elastic_tensor") if isinstance(elastic_doc, dict) else getattr(elastic_doc, "elastic_tensor", None)
    return et.get("ieee_format") if isinstance(et, dict) else getattr(et, "ieee_format", None)


class ShearModulusResult(StageResult):
    """The shear_modulus verdict: G_VRH >= g_vrh_min, from a positive-definite elastic tensor."""

    stage: str = "shear_modulus"
    unit: str | None = "GPa"
    details: ShearModulusDetails = Field(default_factory=ShearModulusDetails)

    @classmethod
    def from_elastic_tensor(cls, ident: dict, voigt, *, g_min: float, backend: str | None = None,
                            task_uuids: Sequence[str | None] = (), structure: Structure | None = None,
                            dft: dict | None = None) -> ShearModulusResult:
        """The verdict from a 6x6 stiffness tensor (GPa, Voigt notation): not computed when it is not
        positive definite (a mechanically unstable crystal or a failed fit has no meaningful G_VRH).

        ``dft``: the MP DFT values of the formula shown beside the model's (``g_vrh_dft``,
        ``g_vrh_dft_polymorphs``); they never decide the verdict."""
        common = {**ident, "backend": backend, "task_uuids": [u for u in task_uuids if u], "structure": structure,
                  "criterion": f"G_VRH >= {g_min} GPa"}
        dft = dft or {}
        try:
            m = vrh_moduli(voigt)
        except AnalysisError as exc:
            return cls(**common, status="not_computed", reason=str(exc), details=ShearModulusDetails(**dft))
        details = ShearModulusDetails(k_vrh=round(m.k_vrh, 2), g_vrh=m.g_vrh, lowest_eigenvalue=m.lowest_eigenvalue,
                                      **dft)
        if not m.positive_definite:
            return cls(**common, status="not_computed", details=details,
                       reason=f"elastic tensor not positive definite (lowest eigenvalue {m.lowest_eigenvalue:.3g} GPa)")
        ok = m.g_vrh >= g_min
        return cls(**common, status="passed" if ok else "failed", value=round(m.g_vrh, 2), details=details,
                   reason=None if ok else f"G_VRH = {m.g_vrh:.1f} GPa < {g_min} GPa")

    @classmethod
    def from_elastic_doc(cls, ident: dict, elastic_doc, **kw) -> ShearModulusResult:
        """The verdict from an atomate2 ElasticDocument (object or stored dict); see ``from_elastic_tensor``."""
        tensor = _ieee_tensor(elastic_doc)
        if tensor is None:
            common = {k: kw[k] for k in ("backend", "structure") if k in kw}
            return cls(**ident, **common, status="not_computed", reason="no elastic tensor in the elastic document",
                       task_uuids=[u for u in kw.get("task_uuids", ()) if u],
                       details=ShearModulusDetails(**(kw.get("dft") or {})))
        return cls.from_elastic_tensor(ident, tensor, **kw)
