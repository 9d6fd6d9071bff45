"""Structure types of Li-M-O ternaries (workflows/analysis/prototypes.py) and the example set's new entries."""

import numpy as np
import pytest
import yaml
from importlib.resources import files
from pymatgen.core import Composition, Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.analysis.prototypes import (NO_PROTOTYPE, coverage, prototypes_for, stoichiometry_type,
                                                    structure_types)


@pytest.mark.parametrize("stype", structure_types(), ids=lambda t: t.name)
def test_each_type_builds_with_its_composition_and_space_group(stype):
    s = stype.parent()
    assert stoichiometry_type(s.composition.reduced_formula) == stype.stoichiometry
    assert SpacegroupAnalyzer(s, symprec=0.01).get_space_group_symbol() == stype.spacegroup
    dm = s.distance_matrix + np.eye(len(s)) * 99
    assert dm.min() > 1.4  # no overlapping atoms (P-O in Li3PO4 is 1.54 A)
    assert stype.reference and stype.positions in ("refined", "idealised")


def test_substitution_gives_the_formula_in_every_matching_type():
    got = prototypes_for("LiDyO2")
    assert [n for n, _ in got] == ["alpha-NaFeO2", "beta-NaFeO2", "alpha-LiErO2"]
    assert all(s.composition.reduced_formula == "LiDyO2" for _, s in got)
    lco = next(t for t in structure_types() if t.name == "alpha-NaFeO2").parent().get_primitive_structure()
    (_, dy_layered), = [(n, s) for n, s in got if n == "alpha-NaFeO2"]
    assert dy_layered.volume > 1.2 * lco.volume  # Dy3+ (0.91 A) is much larger than Co3+ (0.55 A)
    (name, li8), = prototypes_for("Li8HfO6")
    assert name == "Li8SnO6" and li8.composition.reduced_formula == "Li8HfO6"
    assert SpacegroupAnalyzer(li8, symprec=0.01).get_space_group_symbol() == "R-3"


def test_formulas_without_a_type_are_counted_as_no_prototype():
    assert prototypes_for("Li4Ti5O12") == [] and prototypes_for("Li5AlO4") == []
    cv = coverage(["LiCoO2", "Li4Ti5O12", "Li5AlO4", "Li2TiO3", "Li5FeO4"])
    assert sorted(cv.covered) == ["Li2TiO3", "LiCoO2"] and cv.covered["Li2TiO3"] == ["Li2MnO3", "Li2SiO3"]
    assert cv.missing == ["Li4Ti5O12", "Li5AlO4", "Li5FeO4"] and cv.fraction == pytest.approx(0.4)
    assert cv.missing_by_stoichiometry() == {"Li5MO4": 2, "Li4M5O12": 1}
    assert NO_PROTOTYPE == "no prototype"


def test_non_ternary_or_bad_formula_is_one_clear_error():
    with pytest.raises(AnalysisError, match="not a Li-M-O ternary"):
        prototypes_for("Li2O")
    with pytest.raises(AnalysisError, match="not a Li-M-O ternary"):
        prototypes_for("LiCoPO4")
    with pytest.raises(AnalysisError, match="not a chemical formula"):
        prototypes_for("Xx9!")


def _example(mid):
    entries = yaml.safe_load(files("coatflow.workflows").joinpath("data/example_set.yaml").read_text())["compounds"]
    e = next(x for x in entries if x["id"] == mid)
    return e, Structure.from_spacegroup(e["spacegroup"], Lattice.from_parameters(**e["lattice"]), e["species"],
                                        e["coords"])


@pytest.mark.parametrize("mid,formula,sg,z,density", [
    ("ex-LiDyO2", "LiDyO2", "P2_1/c", 4, (6.0, 7.0)),
    ("ex-LiTbO2", "LiTbO2", "P2_1/c", 4, (5.8, 6.8)),
    ("ex-Li8HfO6", "Li8HfO6", "R-3", 3, (3.9, 4.6)),
])
def test_example_picks_have_their_space_group_cell_and_density(mid, formula, sg, z, density):
    e, s = _example(mid)
    assert s.composition.reduced_formula == formula == e["formula"]
    assert Composition(s.composition).get_reduced_formula_and_factor()[1] == z
    assert SpacegroupAnalyzer(s, symprec=0.01).get_space_group_symbol() == sg
    assert density[0] < s.density < density[1]
    o = [i for i, x in enumerate(s) if x.specie.symbol == "O"]
    cat = [i for i, x in enumerate(s) if x.specie.symbol != "O"]
    assert s.distance_matrix[np.ix_(cat, o)].min() > 1.85  # cation-O distances are bonds, not overlaps
