"""Seconds per upsert and per key lookup on the embedded store, as the collection grows.

Compares coatflow's ``SQLiteStore`` (indexed) with maggma's ``MontyStore`` on SQLite (the embedded store
before issue 14, no indexes) at 1,000 / 10,000 / 50,000 job documents shaped like jobflow's. An upsert is
one ``store.update([doc], key=["uuid", "index"])`` call, as jobflow's ``JobStore.update`` makes per job;
a lookup is ``query_one({"metadata.coatflow.key": k})``, as the planner makes per stage. MontyStore stops
at 10,000 documents: every one of its upserts and lookups reads the whole collection.

Run: ``python benchmarks/store_lookup.py [--sizes 1000 10000 50000] [--monty-max 10000]``. It prints figures;
it is not a test. Documents are added in bulk between sizes (not timed).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from pathlib import Path

from coatflow.launchers.embedded_store import SQLiteStore
from coatflow.launchers.stores import INDEXES, JOBS, ensure_index
from maggma.stores import MontyStore


def job_doc(i: int) -> dict:
    """A jobflow-shaped job document (about 1 kB) with a coatflow key."""
    return {
        "uuid": str(uuid.UUID(int=i)), "index": 1, "name": f"relax {i}", "completed_at": f"2026-01-01T00:00:{i:09d}",
        "hosts": [str(uuid.uuid4()), str(uuid.uuid4())],
        "metadata": {"coatflow": {"key": f"key-{i:08d}", "material_id": f"file-M{i // 30}", "task": "relax",
                                  "stage": "bulk_relax", "backend": "mlip"}},
        "output": {"energy_per_atom": -4.5 - i * 1e-6, "volume": 24.5, "converged": True, "n_steps": 37,
                   "structure": {"lattice": [[0.0, 2.3, 2.3], [2.3, 0.0, 2.3], [2.3, 2.3, 0.0]],
                                 "sites": [{"species": "Li", "xyz": [0.25 * k, 0.1, 0.2]} for k in range(6)]}},
    }


def fill(store, start: int, stop: int, monty: bool) -> None:
    for a in range(start, stop, 1000):
        docs = [job_doc(i) for i in range(a, min(stop, a + 1000))]
        if monty:  # insert without upsert: MontyStore's update would scan per document even to fill
            store._collection.insert_many(docs)
        else:
            store.update(docs, key=["uuid", "index"])


def per_upsert(store, n: int, repeats: int) -> float:
    ids = random.sample(range(n), repeats)
    t0 = time.perf_counter()
    for i in ids:  # replace an existing document, one call per job as jobflow does
        doc = job_doc(i)
        doc["output"]["n_steps"] = 38
        store.update([doc], key=["uuid", "index"])
    return (time.perf_counter() - t0) / repeats


def per_lookup(store, n: int, repeats: int) -> float:
    keys = [f"key-{i:08d}" for i in random.sample(range(n), repeats)]
    t0 = time.perf_counter()
    for k in keys:
        doc = store.query_one({"metadata.coatflow.key": k}, properties=["output", "uuid", "index"])
        assert doc is not None
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--monty-max", type=int, default=10000)
    args = parser.parse_args()
    random.seed(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = SQLiteStore(Path(tmp) / "sqlite" / "coatflow.sqlite", JOBS)
        sqlite.connect()
        for key, unique in INDEXES[JOBS]:
            ensure_index(sqlite, key, unique)
        monty = MontyStore(JOBS, database_path=str(Path(tmp) / "monty"), database_name="coatflow", storage="sqlite")
        monty.connect()
        have = {"SQLiteStore": 0, "MontyStore": 0}
        for n in sorted(args.sizes):
            for name, store in (("SQLiteStore", sqlite), ("MontyStore", monty)):
                if name == "MontyStore" and n > args.monty_max:
                    continue
                fill(store, have[name], n, monty=name == "MontyStore")
                have[name] = n
                repeats = 200 if name == "SQLiteStore" else max(3, min(50, 200_000 // n))
                up, look = per_upsert(store, n, repeats), per_lookup(store, n, repeats)
                rows.append((name, n, up, look))
                print(f"{name:12s} {n:>7,d} docs: {up * 1e3:9.3f} ms per upsert, {look * 1e3:9.3f} ms per key lookup",
                      flush=True)
        sqlite.close()
        monty.close()
    print("\nseconds per operation")
    print(f"{'store':12s} {'documents':>10s} {'upsert':>12s} {'lookup':>12s}")
    for name, n, up, look in rows:
        print(f"{name:12s} {n:>10,d} {up:12.2e} {look:12.2e}")


if __name__ == "__main__":
    main()
