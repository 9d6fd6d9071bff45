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
