"""maggma Builder that turns stage verdicts in the JobStore into one ``candidates`` document per material.

Incremental: only materials with verdicts completed after the newest one already built are
processed. Idempotent: a rebuild of the same verdicts writes the same documents.
"""

from __future__ import annotations

from collections.abc import Iterator

from maggma.core import Builder, Store
from monty.json import MontyDecoder

from coatflow.launchers.stores import ensure_index
from coatflow.workflows.criteria import STAGES
from coatflow.workflows.schemas import CandidateDoc, StageResult, StageSummary

VERDICTS = {"metadata.coatflow.task": "verdict"}
SURFACES = {"metadata.coatflow.task": "surface_summary"}
#: Copied from the surface summary (workflows/surfaces.py) into the candidate document.
SURFACE_FIELDS = ("ionization_potential", "electron_affinity", "work_function", "surface_energy")


class CandidateBuilder(Builder):
    def __init__(self, jobs: Store, candidates: Store, **kwargs):
        self.jobs = jobs
        self.candidates = candidates
        super().__init__(sources=[jobs], targets=[candidates], **kwargs)

    def ensure_indexes(self) -> None:
        ensure_index(self.jobs, "metadata.coatflow.material_id")
        ensure_index(self.jobs, "completed_at")
        ensure_index(self.candidates, "material_id", unique=True)

    def watermark(self) -> str | None:
        """completed_at of the newest verdict already in a candidates document."""
        newest = list(self.candidates.query({}, properties=["last_job_completed_at"],
                                            sort={"last_job_completed_at": -1}, limit=1))
        return newest[0].get("last_job_completed_at") if newest else None

    def get_items(self) -> Iterator[dict]:
        self.ensure_indexes()
        criteria = dict(VERDICTS)
        mark = self.watermark()
        if mark:
            criteria["completed_at"] = {"$gt": mark}
        changed = {d["metadata"]["coatflow"]["material_id"]
                   for d in self.jobs.query(criteria, properties=["metadata.coatflow.material_id"])}
        changed |= {d["metadata"]["coatflow"]["material_id"] for d in self.jobs.query(
            {**criteria, **SURFACES}, properties=["metadata.coatflow.material_id"])}
        self.total = len(changed)
        for mid in sorted(changed):
            docs = list(self.jobs.query({**VERDICTS, "metadata.coatflow.material_id": mid},
                                        properties=["uuid", "output", "completed_at"]))
            surf = list(self.jobs.query({**SURFACES, "metadata.coatflow.material_id": mid},
                                        properties=["output", "completed_at"], sort={"completed_at": -1}, limit=1))
            yield {"material_id": mid, "docs": docs, "surface": surf[0] if surf else None}

    def process_item(self, item: dict) -> dict:
        surf = item.get("surface")
        if not item["docs"]:  # a material computed only for its surfaces
            out = surf["output"]
            doc = CandidateDoc(material_id=item["material_id"], formula=out["formula"], source="ip_materials",
                               last_job_completed_at=surf["completed_at"]).model_dump()
            return {**doc, **{k: out.get(k) for k in SURFACE_FIELDS}, "surface": out.get("best")}
        latest: dict[str, tuple[str, StageResult]] = {}
        for doc in item["docs"]:
            result = MontyDecoder().process_decoded(doc["output"])
            if not isinstance(result, StageResult):
                result = StageResult(**{k: v for k, v in result.items() if not k.startswith("@")})
            if result.stage not in latest or doc["completed_at"] > latest[result.stage][0]:
                latest[result.stage] = (doc["completed_at"], result)
        ordered = sorted(latest.values(), key=lambda cr: STAGES.index(cr[1].stage) if cr[1].stage in STAGES else 99)
        first = ordered[0][1]
        cand = CandidateDoc(material_id=item["material_id"], formula=first.formula, source=first.source,
                            predicted=first.predicted,
                            last_job_completed_at=max(c for c, _ in ordered))
        for _, r in ordered:
            cand.stages[r.stage] = StageSummary(**r.model_dump(include=set(StageSummary.model_fields)))
            if r.status == "failed" and cand.failed_stage is None:
                cand.failed_stage = r.stage
            if r.status == "passed":
                cand.stages_passed += 1
            if cand.failed_stage is None:
                cand.furthest_stage = r.stage
        extra = {}
        if surf:
            extra = {**{k: surf["output"].get(k) for k in SURFACE_FIELDS}, "surface": surf["output"].get("best")}
        return {**cand.model_dump(), **extra}

    def update_targets(self, items: list[dict]) -> None:
        if items:
            self.candidates.update(items, key="material_id")


def rank_candidates(docs: list[dict]) -> list[dict]:
    """Survivors first, then by how far each got and how many stages it passed."""

    def depth(d):
        s = d.get("furthest_stage")
        return STAGES.index(s) if s in STAGES else -1

    return sorted(docs, key=lambda d: (d.get("failed_stage") is not None, -depth(d), -d.get("stages_passed", 0),
                                       d["formula"]))
