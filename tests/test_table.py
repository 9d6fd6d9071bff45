"""The ranked table is a pure function of the current config and the store.

A threshold changed and changed back gives the original table with no new job; a builder killed
half-way (SIGKILL) leaves a table that the next ``coatflow build`` repairs.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import yaml

from coatflow.launchers.cli import main
from coatflow.launchers.config import load_config
from coatflow.launchers.stores import CampaignStores


def _table(cfg, capsys) -> dict:
    capsys.readouterr()
    assert main(["query", "-c", cfg, "--json"]) == 0
    return {d["material_id"]: {s: (v["status"], v["value"]) for s, v in d["stages"].items()}
            for d in json.loads(capsys.readouterr().out)}


def _jobs(cfg) -> int:
    stores = CampaignStores(load_config(cfg)).connect()
    try:
        return stores.jobs.docs_store.count()
    finally:
        stores.close()


def _set(cfg, section, key, value):
    raw = yaml.safe_load(open(cfg))
    raw.setdefault(section, {})[key] = value
    with open(cfg, "w") as fh:
        yaml.safe_dump(raw, fh)


def test_threshold_change_and_revert_gives_the_same_table_with_no_jobs(write_config, structure_dir, capsys):
    cfg = write_config(candidates={"source": "files", "paths": [str(structure_dir / "POSCAR_LiF")]},
                       run={"stop_after": "phase_stability", "workers": 1})
    assert main(["run", "-c", cfg]) == 0
    original, n_jobs = _table(cfg, capsys), _jobs(cfg)
    e_hull = original["file-POSCAR_LiF"]["phase_stability"][1]  # meV/atom on the local CHGNet hull
    assert original["file-POSCAR_LiF"]["phase_stability"][0] == "passed" and 0.05 < e_hull < 5

    _set(cfg, "phase_stability", "e_hull_max", 0.00005)  # 0.05 meV/atom: LiF now fails phase stability
    assert main(["run", "-c", cfg]) == 0
    strict = _table(cfg, capsys)
    assert strict["file-POSCAR_LiF"]["phase_stability"][0] == "failed"
    assert _jobs(cfg) == n_jobs + 1  # only the new phase-stability verdict

    _set(cfg, "phase_stability", "e_hull_max", 0.005)  # back: the stored verdict of this config is shown again
    assert main(["run", "-c", cfg]) == 0
    assert capsys.readouterr().err.count("ran 0 jobs") == 1
    assert _table(cfg, capsys) == original
    assert _jobs(cfg) == n_jobs + 1


_KILLED_BUILD = textwrap.dedent("""
    import os, signal, sys
    from coatflow.launchers.config import load_config
    from coatflow.launchers.local import plan_campaign_inputs
    from coatflow.launchers.stores import CampaignStores
    from coatflow.workflows.builders import CandidateBuilder

    stores = CampaignStores(load_config(sys.argv[1]))
    campaign = plan_campaign_inputs(stores.config, stores)
    b = CandidateBuilder(stores.jobs.docs_store, stores.candidates, campaign.planned_verdicts(), chunk_size=1)
    docs = [b.process_item(i) for i in b.get_items()]
    b.update_targets(docs[:1])  # the first row is written ...
    os.kill(os.getpid(), signal.SIGKILL)  # ... and the builder dies before the others
""")


def test_a_builder_killed_half_way_is_repaired_by_the_next_build(write_config, structure_dir, capsys):
    cfg = write_config(candidates={"source": "files", "paths": [str(structure_dir)]},
                       run={"stop_after": "database_filter", "workers": 1})
    assert main(["run", "-c", cfg]) == 0
    good = _table(cfg, capsys)
    assert len(good) == 3

    stores = CampaignStores(load_config(cfg)).connect()
    try:  # a stale table: rows of another configuration, a foreign row, a missing row
        rows = list(stores.candidates.query({}, properties={"_id": 0}))
        for r in rows:
            r["stages"]["database_filter"]["status"] = "failed"
            r["fingerprint"] = "stale"
        stores.candidates.update(rows[1:] + [{**rows[0], "material_id": "gone-XYZ"}], key="material_id")
        stores.candidates.remove_docs({"material_id": rows[0]["material_id"]})
    finally:
        stores.close()
    assert _table(cfg, capsys) != good

    killed = subprocess.run([sys.executable, "-c", _KILLED_BUILD, cfg], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL
    half = _table(cfg, capsys)
    assert half != good and sum(half.get(m) == good[m] for m in good) >= 1  # one row repaired before the kill

    assert main(["build", "-c", cfg]) == 0
    assert _table(cfg, capsys) == good
    assert main(["build", "-c", cfg]) == 0
    assert capsys.readouterr().out.startswith("0 candidate documents updated")


def _keys_computed_twice(cfg) -> list[str]:
    stores = CampaignStores(load_config(cfg)).connect()
    try:
        seen: dict[str, set] = {}
        for d in stores.jobs.docs_store.query({"metadata.coatflow.key": {"$exists": True}},
                                              properties=["uuid", "metadata.coatflow.key"]):
            seen.setdefault(d["metadata"]["coatflow"]["key"], set()).add(d["uuid"])
        return [k for k, uuids in seen.items() if len(uuids) > 1]
    finally:
        stores.close()


def test_a_second_run_on_the_same_store_is_refused_and_workers_never_share_a_key(write_config, structure_dir):
    """Two `coatflow run` at once: the second fails at once naming the first; two workers inside the
    first share the competing-phase relaxations without computing any key twice."""
    cfg = write_config(candidates={"source": "files", "paths": [str(structure_dir / "Li2O.cif"),
                                                                 str(structure_dir / "POSCAR_LiF")]},
                       run={"stop_after": "phase_stability", "workers": 2})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([sys.executable, "-m", "coatflow.launchers.cli", "run", "-c", cfg], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = os.path.join(os.path.dirname(cfg), "store", "coatflow.lock")
    for _ in range(1200):  # until the first run holds the lock (its record names its pid)
        if os.path.exists(lock) and f'"pid": {first.pid}' in open(lock).read() or first.poll() is not None:
            break
        time.sleep(0.1)
    second = subprocess.run([sys.executable, "-m", "coatflow.launchers.cli", "run", "-c", cfg], env=env,
                            capture_output=True, text=True, timeout=120)
    out, err = first.communicate(timeout=1800)
    assert first.returncode == 0, err[-2000:]
    assert second.returncode == 2
    assert "in use by coatflow run" in second.stderr and f"pid {first.pid}" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
    assert _keys_computed_twice(cfg) == []
