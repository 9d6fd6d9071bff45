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


def newest_by_formula(jobs: Store, task: str) -> dict[str, dict]:
    """formula -> newest job document (output, uuid, completed_at, coatflow metadata) of ``task``.

    Older documents of the same material (other settings) stay in the store; this picks what is current.
    """
    out: dict[str, dict] = {}
    for d in jobs.query({"metadata.coatflow.task": task},
                        properties=["output", "uuid", "completed_at", "metadata.coatflow"]):
        f = (d.get("output") or {}).get("formula")
        if f and (f not in out or (d.get("completed_at") or "") > (out[f].get("completed_at") or "")):
            out[f] = d
    return out


class PotentialMapBuilder(Builder):
    """One ``potential_maps`` document per (electrolyte, cathode, state of charge) whose ingredients are stored.

    Every electrolyte with a defect analysis and an IP is paired with every cathode with voltages and an IP
    (or work function), given a Li work function. Incremental: a stack is rebuilt only when one of its
    ingredients completed after its stored map; idempotent otherwise.
    """

    def __init__(self, jobs: Store, maps: Store, settings: dict, **kwargs):
        self.jobs = jobs
        self.maps = maps
        self.settings = settings
        super().__init__(sources=[jobs], targets=[maps], **kwargs)

    def get_items(self) -> Iterator[dict]:
        from coatflow.workflows.potential_maps import DEFECT_TASK, SURFACE_TASK, VOLTAGE_TASK

        ensure_index(self.maps, "electrolyte")
        tasks = (SURFACE_TASK, DEFECT_TASK, VOLTAGE_TASK)
        surfaces, defects, voltages = (newest_by_formula(self.jobs, t) for t in tasks)
        built = {(d["electrolyte"], d["cathode"]): d.get("completed_at") or ""
                 for d in self.maps.query({}, properties=["electrolyte", "cathode", "completed_at"])}
        li = surfaces.get("Li")
        items = []
        if li is not None:
            for se, se_defects in sorted(defects.items()):
                for cathode, volt in sorted(voltages.items()):
                    if se not in surfaces or cathode not in surfaces:
                        continue
                    parts = (li, surfaces[se], se_defects, surfaces[cathode], volt)
                    newest = max(p.get("completed_at") or "" for p in parts)
                    if newest > built.get((se, cathode), ""):
                        items.append(parts)
        self.total = len(items)
        yield from items

    def process_item(self, item) -> list[dict]:
        from coatflow.workflows.potential_maps import assemble_maps

        return [m.model_dump() for m in assemble_maps(*item, self.settings)]

    def update_targets(self, items: list[list[dict]]) -> None:
        docs = [d for group in items for d in group]
        if docs:
            self.maps.update(docs, key=["electrolyte", "cathode", "state_of_charge"])
