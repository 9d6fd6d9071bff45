"""The restarts and failed attempts of GPAW and force-field jobs, read from the job store, for ``coatflow status``.

``makers/restarts.py`` records every attempt of a job in its store document (``metadata.attempts``,
``metadata.attempts_status``): a job that needed a restart is ``restarted``; a job that gave up left a
document of its own with ``output: null`` (``failed``), which is ``superseded`` once a later run of the same
key finished.
"""

from __future__ import annotations

from maggma.core import Store

from coatflow.launchers.config import CampaignConfig
from coatflow.launchers.stores import embedded_file, make_job_store

_PROPS = ["uuid", "name", "completed_at", "failed_at", "metadata.attempts", "metadata.attempts_status",
          "metadata.coatflow", "metadata.failed_coatflow"]


def attempt_rows(jobs: Store, limit: int = 200) -> list[dict]:
    """One row per job that was restarted or gave up, newest first: name, material, stage, status, attempts."""
    rows = []
    for d in jobs.query({"metadata.attempts_status": {"$in": ["restarted", "failed"]}}, properties=_PROPS):
        meta = d.get("metadata") or {}
        label = meta.get("coatflow") or meta.get("failed_coatflow") or {}
        status = meta["attempts_status"]
        if status == "failed" and label.get("key") and jobs.count(
                {"metadata.coatflow.key": label["key"], "output": {"$ne": None}}):
            status = "failed, superseded"  # a later run of the same key finished
        rows.append({"uuid": d["uuid"], "name": d.get("name"), "material_id": label.get("material_id"),
                     "stage": label.get("stage"), "status": status, "attempts": meta.get("attempts") or [],
                     "when": d.get("completed_at") or d.get("failed_at") or ""})
    rows.sort(key=lambda r: str(r["when"]), reverse=True)
    return rows[:limit]


def attempt_lines(rows: list[dict]) -> list[str]:
    """``coatflow status`` lines: one per job, then one per attempt (error -> what was changed)."""
    lines = []
    for r in rows:
        lines.append(f"{r['status']}: {r['name']} ({r['material_id'] or '-'}, {r['stage'] or '-'}), "
                     f"{len(r['attempts'])} attempt(s)")
        for a in r["attempts"]:
            fix = a.get("correction")
            fix = ", ".join(f"{k}={v}" for k, v in fix.items()) if isinstance(fix, dict) else "-"
            lines.append(f"    {a['attempt']}. {a.get('started', '')[:19]}Z  {a.get('error') or 'ok'}"
                         + (f"  -> {fix}" if a.get("error") else ""))
    return lines


def print_attempts(config: CampaignConfig) -> None:
    """Print the restarted and failed jobs of the campaign's store (nothing when there are none or no store)."""
    if config.store.kind == "embedded" and not embedded_file(config).exists():
        return
    store = make_job_store(config)
    store.connect()
    try:
        lines = attempt_lines(attempt_rows(store.docs_store))
    finally:
        store.close()
    if lines:
        print("restarts and failed attempts (GPAW, force fields):")
        print("\n".join(lines))
