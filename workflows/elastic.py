"""Shear-modulus stage: elastic tensor on the configured backend, then G_VRH >= g_vrh_min.

The moduli come from workflows/analysis/elastic.py, the verdict document from workflows/schemas/elastic.py.
"""

from __future__ import annotations

from jobflow import Response, job

from coatflow.makers.registry import get_maker
from coatflow.workflows.campaign import make_key, settings_of
from coatflow.workflows.schemas.elastic import ShearModulusResult


@job(name="shear modulus verdict", output_schema=ShearModulusResult)
def shear_modulus_verdict(ident: dict, elastic_doc, structure, g_min: float, backend: str, uuid: str) -> Response:
    r = ShearModulusResult.from_elastic_doc(ident, elastic_doc, g_min=g_min, backend=backend, task_uuids=[uuid],
                                            structure=structure)
    return Response(output=r, stop_children=not r.passed)


def plan_shear_modulus(planner, plan, upstream: str, verdict):
    backend = planner.config.backends.elastic
    maker = get_maker("elastic", backend)
    key = make_key(upstream, "elastic", backend, settings_of(maker))
    out, uuid = planner.add(plan, key, "shear_modulus", "elastic", backend, lambda: maker.make(verdict.structure))
    return planner.gate(plan, make_key(key, "verdict", planner.thresholds["g_vrh_min"]), "shear_modulus", backend,
                        lambda: shear_modulus_verdict(plan.ident, out, verdict.structure,
                                                      planner.thresholds["g_vrh_min"], backend, uuid))
