"""The cathode-coating programme's bundled structures (issue #18): the five cathodes in both states, their
competing phases, and the known coatings the formula route cannot build.

Built from crystallographic facts by data/build_cathode_phases.py into data/cathode_phases.json.gz (sources there
and in docs/cathode_coating.md), stored as built; on ``thermo.entries: local`` the cathode_compatibility stage
relaxes them with the configured backend like every bundled competing phase (workflows/phase_diagrams.py
``phase_inputs``, ``extra``). Phase ids are '<reduced formula>:cathode' for the cathodes in both states
(``LiCoO2:cathode``, ``CoO2:cathode``) and '<reduced formula>:cathode-set' for their competing phases
(``Co3O4:cathode-set``), so that their relaxation keys never meet those of data/competing_phases.json.gz.
"""

from __future__ import annotations

import gzip
import json
from functools import cache

from pymatgen.core import Composition, Structure

from coatflow.workflows.reference_data import competing_phases, data_path
from coatflow.workflows.candidates import example_structures

@cache
def _doc() -> dict:
    with gzip.open(data_path("cathode_phases.json.gz").open("rb"), "rt") as f:
        return json.load(f)


def _formula(d: dict) -> str:
    return Structure.from_dict(d).composition.reduced_formula


def cathode_phases() -> dict[str, dict]:
    """{phase id: structure dict} of the cathodes (both states) and their competing phases."""
    return {**_doc()["cathodes"], **_doc()["phases"]}


def cathode_phases_for(elements) -> dict[str, dict]:
    """The bundled cathode phases whose elements all lie in ``elements``."""
    els = {str(e) for e in elements}
    return {pid: d for pid, d in cathode_phases().items()
            if {el.symbol for el in Composition(pid.split(":")[0]).elements} <= els}


def coating_structures() -> dict[str, Structure]:
    """{formula: structure} of the known coatings the formula route cannot build but the project has facts for:
    Li4Ti5O12 (data/cathode_phases.json.gz), Li3PO4 (the example set's beta-Li3PO4) and LiTi2(PO4)3 (the bundled
    NASICON competing phase)."""
    out = {_formula(d): Structure.from_dict(d) for d in _doc()["coatings"].values()}
    out["Li3PO4"] = example_structures()["ex-Li3PO4"]
    out["LiTi2(PO4)3"] = Structure.from_dict(competing_phases()["LiTi2(PO4)3:facts"])
    return out
