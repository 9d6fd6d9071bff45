"""Shear-modulus stage: elastic tensor on the configured backend, then G_VRH >= g_vrh_min."""

from __future__ import annotations

import numpy as np
from jobflow import Response, job
from pymatgen.analysis.elasticity import ElasticTensor

from coatflow.makers.registry import get_maker
from coatflow.workflows.schemas import StageResult
from coatflow.workflows.stages import _get


def g_vrh_from_doc(elastic_doc) -> tuple[float, float, float]:
    """(G_VRH, K_VRH, lowest eigenvalue of the Voigt matrix) in GPa from an atomate2 ElasticDocument."""
    tensor = _get(elastic_doc, "elastic_tensor", "ieee_format")
    et = ElasticTensor.from_voigt(tensor)
    return float(et.g_vrh), float(et.k_vrh), float(np.linalg.eigvalsh(et.voigt).min())


@job(name="shear modulus verdict")
def shear_modulus_verdict(ident: dict, elastic_doc, structure, g_min: float, backend: str, uuid: str) -> Response:
    try:
        g, k, lowest = g_vrh_from_doc(elastic_doc)
    except Exception as exc:  # noqa: BLE001 - no tensor in the document
        r = StageResult(**ident, stage="shear_modulus", status="not_computed", backend=backend, task_uuids=[uuid],
                        reason=f"not computed: no elastic tensor ({type(exc).__name__})", structure=structure)
        return Response(output=r)
    if lowest <= 0:  # not positive definite: the fit (or the structure) is unreliable, G means nothing
        r = StageResult(**ident, stage="shear_modulus", status="not_computed", backend=backend, task_uuids=[uuid],
                        reason=f"not computed: elastic tensor not positive definite (lowest eigenvalue "
                               f"{lowest:.3g} GPa)", details={"g_vrh_fit": g, "k_vrh_fit": k}, structure=structure)
        return Response(output=r)
    ok = g >= g_min
    r = StageResult(**ident, stage="shear_modulus", status="passed" if ok else "failed", value=round(g, 2),
                    unit="GPa", criterion=f"G_VRH >= {g_min} GPa", backend=backend, task_uuids=[uuid],
                    reason=None if ok else f"G_VRH = {g:.1f} GPa < {g_min} GPa",
                    details={"k_vrh": round(k, 2)}, structure=structure)
    return Response(output=r, stop_children=not ok)


def plan_shear_modulus(planner, plan, upstream: str, verdict):
    from coatflow.workflows.campaign import make_key, settings_of

    backend = planner.config.backends.elastic
    maker = get_maker("elastic", backend)
    key = make_key(upstream, "elastic", backend, settings_of(maker))
    out, uuid = planner.add(plan, key, "shear_modulus", "elastic", backend, lambda: maker.make(verdict.structure))
    return planner.gate(plan, make_key(key, "verdict", planner.thresholds["g_vrh_min"]), "shear_modulus", backend,
                        lambda: shear_modulus_verdict(plan.ident, out, verdict.structure,
                                                      planner.thresholds["g_vrh_min"], backend, uuid))
