"""VASP slab inputs, bulk structures for IPs, and small real GPAW runs (Li WF, LiF IP vs vacuum).

Slab generation, flags, layer fixing and plateaus on plain pymatgen objects: tests/test_analysis_slabs.py.
"""

from __future__ import annotations

import os

import pytest
from jobflow import Flow, JobStore, run_locally
from maggma.stores import MemoryStore
from pymatgen.core import Lattice, Structure
from pymatgen.core.surface import SlabGenerator

from coatflow.makers.slab import GpawPotentialMaker, VaspSlabRelaxMaker, VaspSlabStaticMaker
from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.analysis.slabs import SlabSpec, fix_layers, generate_slabs, termination_label
from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.surfaces import _doc, _spec_dict, analyse_slab_doc, bulk_structure

os.environ.setdefault("OMP_NUM_THREADS", "1")
LIF = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.07), ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]])
LI = Structure.from_spacegroup("Im-3m", Lattice.cubic(3.44), ["Li"], [[0, 0, 0]])


def test_bad_inputs_raise_coatflow_error():
    with pytest.raises(AnalysisError):
        generate_slabs(LIF, facets=[[0, 0, 0]])
    with pytest.raises(CoatflowError):
        bulk_structure("Xx9Q")
    with pytest.raises(CoatflowError):
        bulk_structure("CsAu")


def test_vasp_slab_inputs(tmp_path):
    slab = fix_layers(generate_slabs(LIF, facets=[[1, 0, 0]], slab_thickness=8, vacuum=12)[0].slab)
    static = VaspSlabStaticMaker().input_set_generator.get_input_set(slab, potcar_spec=True)
    static.write_input(tmp_path / "static")
    relax = VaspSlabRelaxMaker().input_set_generator.get_input_set(slab, potcar_spec=True)
    for vis in (static, relax):
        inc = vis["INCAR"]
        assert inc["LVHAR"] is True and inc["IDIPOL"] == 3 and inc["LDIPOL"] is True
        assert vis["KPOINTS"].kpts[0][2] == 1 and min(vis["KPOINTS"].kpts[0][:2]) > 1
    assert relax["INCAR"]["ISIF"] == 2 and relax["INCAR"]["NSW"] > 0
    text = (tmp_path / "static" / "KPOINTS").read_text().split()
    assert text[-1] == "1"  # written KPOINTS: one point along the normal
    poscar = (tmp_path / "static" / "POSCAR").read_text()
    assert "Selective dynamics" in poscar and "F F F" in poscar
    assert sorted((tmp_path / "static" / "POTCAR.spec").read_text().split()) == ["F", "Li_sv"]


def _run(jobs):
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    run_locally(Flow(jobs), store=store, ensure_success=True, log=False)
    return store


#: 350 eV / k density 2 (LiF VBM at Gamma): LiF(100) IP 7.30 eV; 350 eV / k 3: 7.32; 300 eV / k 2: 6.87 (too low for F).
FAST = {"mode": {"name": "pw", "ecut": 350}, "kpts": {"density": 2.0, "gamma": True}, "nbands": "130%"}


def _gpaw_surfaces(bulk: Structure, hkl, thickness, vacuums, ident, calc=FAST):
    """One bulk reference + one slab single point per vacuum through jobflow, then the analyses."""
    settings = {"plateau_distance": 3.5, "plateau_tol": 0.03}
    slabs = [SlabGenerator(bulk, hkl, thickness, v, center_slab=True, primitive=True,
                           reorient_lattice=True).get_slabs()[0] for v in vacuums]
    jb = GpawPotentialMaker(calculator_kwargs=calc).make(bulk.get_primitive_structure())
    js = [GpawPotentialMaker(slab=True, calculator_kwargs=calc).make(s) for s in slabs]
    store = _run([jb, *js])
    assert store.additional_stores["data"].count() == 1 + len(js)  # the potential profiles went to the data store
    b = _doc(store.get_output(jb.uuid, load=True))
    docs = []
    for slab, j, vac in zip(slabs, js, vacuums):
        spec = SlabSpec(slab, tuple(hkl), slab.shift, termination_label(slab), slab.is_symmetric(), slab.is_polar(),
                        True)
        docs.append(analyse_slab_doc(ident, b, _doc(store.get_output(j.uuid, load=True)), _spec_dict(spec, vac),
                                     settings))
    return docs


def test_li_work_function_gpaw():
    pytest.importorskip("gpaw")
    calc = {"mode": {"name": "pw", "ecut": 350}, "kpts": {"density": 3.0, "gamma": True}, "nbands": "130%"}
    (doc,) = _gpaw_surfaces(LI, (1, 0, 0), 7.0, [10.0], {"material_id": "t-Li", "formula": "Li"}, calc)
    assert doc.metallic and doc.plateau_flat
    assert 2.8 < doc.work_function < 3.2, doc.work_function


def test_lif_ip_converged_with_vacuum_gpaw():
    """LiF(100), 4 layers (8 atoms), 350 eV, k density 2: bulk + slabs in 16.3 and 20.4 Å cells."""
    pytest.importorskip("gpaw")
    a, b = _gpaw_surfaces(LIF, (1, 0, 0), 6.0, [8.0, 12.0], {"material_id": "t-LiF", "formula": "LiF"})
    print(f"LiF(100) IP {a.ionization_potential:.3f} / {b.ionization_potential:.3f} eV (slab alone "
          f"{a.ionization_potential_slab:.3f} / {b.ionization_potential_slab:.3f}), spread {a.plateau_spread:.3f} / "
          f"{b.plateau_spread:.3f} eV, gamma {a.surface_energy:.3f} J/m2")
    assert not a.metallic and a.plateau_flat and b.plateau_flat
    assert b.vacuum_level < a.vacuum_level - 0.1  # GPAW's zero is the cell average: the window must not care
    assert 6.5 < a.ionization_potential < 8.0, a.ionization_potential  # PBE LiF(100): about 7.2-7.4 eV
    assert abs(a.ionization_potential - b.ionization_potential) < 0.05, (a.ionization_potential,
                                                                          b.ionization_potential)
    assert abs(a.ionization_potential_slab - b.ionization_potential_slab) < 0.05
    assert a.surface_energy > 0
