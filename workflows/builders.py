"""maggma Builders: the ranked ``candidates`` table and the interface potential maps, from the JobStore.

``CandidateBuilder`` maps one planned candidate to one document (the model is emmet's MapBuilders:
one item in, one document out). The item is what the *current* plan asks for: the verdict key of each
stage the candidate reaches. So the table is a pure function of the config and the store: change a
threshold and back and the table is the old one again, and a build that was killed half-way is
repaired by the next one, since nothing depends on a watermark. Documents are compared by a
fingerprint of the verdicts they were built from; only changed ones are written, in one bulk update,
and rows of candidates the plan no longer holds are removed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

from maggma.core import Builder, Store

from coatflow.workflows.potential_maps import DEFECT_TASK, SURFACE_TASK, VOLTAGE_TASK, assemble_maps
from coatflow.workflows.schemas import CandidateDoc, StageSummary
from coatflow.workflows.timestamps import is_newer, newest, utc_iso

SURFACES = {"metadata.coatflow.task": "surface_summary"}
#: Copied from the surface summary (workflows/surfaces.py) into the candidate document.
SURFACE_FIELDS = ("ionization_potential", "electron_affinity", "work_function", "surface_energy")


def _fingerprint(*parts) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _summary(output: dict) -> StageSummary:
    """The table's part of a stored verdict, read from the document (its structures are not decoded)."""
    return StageSummary(**{k: output[k] for k in StageSummary.model_fields if k in output})


class CandidateBuilder(Builder):
    """One ``candidates`` document per planned candidate, from the verdicts its current plan produces.

    ``planned``: one ``{"ident": {material_id, formula, source, predicted}, "verdict_keys": {stage: key}}``
    per candidate (``FunnelPlanner.plan`` records ``verdict_keys``); ``surface_ids``: materials computed
    for their surfaces only (``slab.ip_materials``), whose rows carry the newest surface summary.
    """

    def __init__(self, jobs: Store, candidates: Store, planned: list[dict], surface_ids: list[str] = (),
                 chunk_size: int = 500, **kwargs):
        self.jobs = jobs
        self.candidates = candidates
        self.planned = planned
        self.surface_ids = list(surface_ids)
        self.updated = 0
        super().__init__(sources=[jobs], targets=[candidates], chunk_size=chunk_size, **kwargs)

    def _verdicts(self, keys: list[str]) -> dict[str, dict]:
        """key -> newest stored document, for a batch of keys: one indexed query."""
        found: dict[str, dict] = {}
        for d in self.jobs.query({"metadata.coatflow.key": {"$in": keys}, "output": {"$ne": None}},
                                 properties=["output", "uuid", "index", "completed_at", "metadata.coatflow.key"]):
            k = d["metadata"]["coatflow"]["key"]
            if k not in found or d["index"] > found[k]["index"]:
                found[k] = d
        return found

    def _surfaces(self, material_ids: list[str]) -> dict[str, dict]:
        if not material_ids:
            return {}
        out: dict[str, dict] = {}
        for d in self.jobs.query({**SURFACES, "metadata.coatflow.material_id": {"$in": material_ids}},
                                 properties=["output", "uuid", "completed_at", "metadata.coatflow.material_id"]):
            mid = d["metadata"]["coatflow"]["material_id"]
            if mid not in out or is_newer(d.get("completed_at"), out[mid].get("completed_at")):
                out[mid] = d
        return out

    def get_items(self) -> Iterator[dict]:
        self.total = len(self.planned) + len(self.surface_ids)
        for i in range(0, len(self.planned), self.chunk_size):
            chunk = self.planned[i:i + self.chunk_size]
            docs = self._verdicts([k for p in chunk for k in p["verdict_keys"].values()])
            surf = self._surfaces([p["ident"]["material_id"] for p in chunk])
            for p in chunk:
                mid = p["ident"]["material_id"]
                yield {"ident": p["ident"], "surface": surf.get(mid),
                       "verdicts": {s: docs[k] for s, k in p["verdict_keys"].items() if k in docs}}
        planned_ids = {p["ident"]["material_id"] for p in self.planned}
        only = [m for m in self.surface_ids if m not in planned_ids]
        surf = self._surfaces(only)
        for mid in only:
            if mid in surf:
                yield {"ident": None, "surface": surf[mid], "verdicts": {}}

    def process_item(self, item: dict) -> dict:
        surf = item.get("surface")
        extra = {}
        if surf:
            extra = {**{k: surf["output"].get(k) for k in SURFACE_FIELDS}, "surface": surf["output"].get("best")}
        if item["ident"] is None:  # a material computed only for its surfaces
            out = surf["output"]
            doc = CandidateDoc(material_id=surf["metadata"]["coatflow"]["material_id"], formula=out["formula"],
                               source="ip_materials", last_job_completed_at=utc_iso(surf.get("completed_at"))).model_dump()
            return {**doc, **extra, "fingerprint": _fingerprint(surf["uuid"], surf.get("completed_at"))}
        ident = item["ident"]
        cand = CandidateDoc(**{k: ident[k] for k in ("material_id", "formula", "source", "predicted") if k in ident})
        used = []
        for stage in item["verdicts"]:  # in the order the plan met them (config.stages(), not the table's)
            d = item["verdicts"][stage]
            r = _summary(d["output"])
            used.append((stage, d["uuid"], d["index"]))
            cand.stages[stage] = r
            done = d.get("completed_at")
            if done and is_newer(done, cand.last_job_completed_at):
                cand.last_job_completed_at = utc_iso(done)
            if r.status == "passed":
                cand.stages_passed += 1
            cand.furthest_stage = stage
            if r.status == "failed":
                cand.failed_stage = stage
                break  # the funnel stops here; verdicts further on belong to other plans
        fp = _fingerprint(used, surf and surf["uuid"])
        return {**cand.model_dump(), **extra, "fingerprint": fp}

    def update_targets(self, items: list[dict]) -> None:
        """Write the documents whose fingerprint changed (one bulk update)."""
        have = {d["material_id"]: d.get("fingerprint") for d in self.candidates.query(
            {"material_id": {"$in": [d["material_id"] for d in items]}}, properties=["material_id", "fingerprint"])}
        changed = [d for d in items if have.get(d["material_id"]) != d["fingerprint"]]
        if changed:
            self.candidates.update(changed, key="material_id")
        self.updated += len(changed)

    def finalize(self) -> None:
        """Remove the rows of candidates the current plan does not hold."""
        keep = {p["ident"]["material_id"] for p in self.planned} | set(self.surface_ids)
        gone = [d["material_id"] for d in self.candidates.query({}, properties=["material_id"])
                if d["material_id"] not in keep]
        if gone:
            self.candidates.remove_docs({"material_id": {"$in": gone}})
        self.removed = len(gone)


def rank_candidates(docs: list[dict]) -> list[dict]:
    """Survivors first, then by how far each got (how many stage verdicts it has: the order of the stages
    differs between scales, their number does not) and how many stages it passed."""
    return sorted(docs, key=lambda d: (d.get("failed_stage") is not None, -len(d.get("stages") or {}),
                                       -d.get("stages_passed", 0), d["formula"]))


def newest_by_formula(jobs: Store, task: str) -> dict[str, dict]:
    """formula -> newest job document (output, uuid, completed_at, coatflow metadata) of ``task``.

    Older documents of the same material (other settings) stay in the store; this picks what is current.
    """
    out: dict[str, dict] = {}
    for d in jobs.query({"metadata.coatflow.task": task},
                        properties=["output", "uuid", "completed_at", "metadata.coatflow"]):
        f = (d.get("output") or {}).get("formula")
        if f and (f not in out or is_newer(d.get("completed_at"), out[f].get("completed_at"))):
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
                    if is_newer(newest(p.get("completed_at") for p in parts), built.get((se, cathode))):
                        items.append(parts)
        self.total = len(items)
        yield from items

    def process_item(self, item) -> list[dict]:
        return [m.model_dump() for m in assemble_maps(*item, self.settings)]

    def update_targets(self, items: list[list[dict]]) -> None:
        docs = [d for group in items for d in group]
        if docs:
            self.maps.update(docs, key=["electrolyte", "cathode", "state_of_charge"])
