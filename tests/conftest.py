"""Shared fixtures: tiny structures and a campaign config on every available store kind."""

from __future__ import annotations

import os
import uuid
import warnings

import pytest
import yaml
from pymatgen.core import Lattice, Structure

warnings.filterwarnings("ignore")
MONGO_URI = os.environ.get("COATFLOW_TEST_MONGODB_URI")
STORE_KINDS = ["embedded"] + (["mongodb"] if MONGO_URI else [])


def li2o() -> Structure:
    s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.61), ["Li", "O"], [[0.25] * 3, [0, 0, 0]])
    return s.get_primitive_structure()


def lif() -> Structure:
    s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.03), ["Li", "F"], [[0, 0, 0], [0.5] * 3])
    return s.get_primitive_structure()


def lirho2() -> Structure:
    s = Structure.from_spacegroup("R-3m", Lattice.hexagonal(3.02, 14.3), ["Li", "Rh", "O"],
                                  [[0, 0, 0.5], [0, 0, 0], [0, 0, 0.26]])
    return s.get_primitive_structure()


@pytest.fixture(params=STORE_KINDS)
def store_section(request, tmp_path):
    if request.param == "embedded":
        yield {"kind": "embedded", "path": str(tmp_path / "store")}
        return
    db = f"coatflow_test_{uuid.uuid4().hex[:8]}"
    yield {"kind": "mongodb", "uri": MONGO_URI, "database": db}
    import pymongo

    pymongo.MongoClient(MONGO_URI).drop_database(db)


@pytest.fixture
def write_config(tmp_path, store_section):
    """Write a config file in tmp_path; returns its path."""

    def _write(**sections) -> str:
        sections.setdefault("store", store_section)
        path = tmp_path / "coatflow.yaml"
        path.write_text(yaml.safe_dump(sections))
        return str(path)

    return _write


@pytest.fixture
def structure_dir(tmp_path):
    d = tmp_path / "structures"
    d.mkdir()
    li2o().to(filename=str(d / "Li2O.cif"))
    lif().to(filename=str(d / "POSCAR_LiF"))
    lirho2().to(filename=str(d / "LiRhO2.json"))
    return d


#: The CI-sized Li | LiF | LiCoO2 stack on GPAW (tiny cells): LiF defects, Li / LiF / LiCoO2 (110) slabs,
#: CHGNet cathode voltages. test_defects and test_potential_maps assert on the same run.
LIF_STACK_CONFIG = """
candidates: {source: formulas, formulas: [Li2O]}
run: {stop_after: database_filter}
slab: {relax_bulk: false, facets: [[1, 1, 0]], slab_thickness: 4.0, vacuum: 8.0, max_atoms: 16, ecut: 300,
       kpt_density: 2.0}
defects:
  include: [v_Li, Li_i]
  min_length: 5.0
  max_atoms: 16
  dielectric_calc: {ecut: 300, kpt_density: 1.0, displacement: 0.02, eps_kpt_density: 1.2, nbands: 24,
                    response_ecut: 30}   # no defects.dielectric entry: GPAW computes it (tiny settings)
  relax_bulk: false
  ecut: 300
  kpt_density: 1.5
  dos_kpt_density: 3.0
  n_mu: 11
potential_maps:
  stacks: [{electrolyte: LiF, cathode: LiCoO2}]
"""


def run_cli(*args, timeout=1800):
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "coatflow.launchers.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="session")
def lif_stack(tmp_path_factory):
    """(config path, the `coatflow run` result) of one end-to-end run of LIF_STACK_CONFIG."""
    cfg = tmp_path_factory.mktemp("lif_stack") / "coatflow.yaml"
    cfg.write_text(LIF_STACK_CONFIG)
    run = run_cli("run", "-c", str(cfg))
    assert run.returncode == 0, run.stderr[-3000:]
    return cfg, run
