"""Elastic tensor of a relaxed candidate: atomate2's force-field or VASP elastic flow.

Both flows get the candidate's cell with its symmetry refined and its lattice in the standard orientation
(``workflows/analysis/elastic.py`` ``symmetrized_standard_cell``): atomate2 adds the images of each computed
strain under the crystal's Cartesian symmetry operations, and a cell left a few 1e-9 rad off the Cartesian
axes by a relaxation without symmetry constraints turns those images into spurious strain states (LiF in
the example campaign: C11 = -3.9e7 GPa).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from atomate2.forcefields.flows.elastic import ElasticMaker as ForceFieldElasticMaker
from atomate2.forcefields.jobs import ForceFieldRelaxMaker
from atomate2.vasp.flows.elastic import ElasticMaker as VaspElasticMaker
from jobflow import Flow, OutputReference, job
from pymatgen.core import Structure

from coatflow.makers.mlip import CHGNET_CALCULATOR, IONIC_STEP_DATA
from coatflow.makers.registry import register
from coatflow.makers.restarts import KeyedSubJobMaker
from coatflow.workflows.analysis.elastic import symmetrized_standard_cell

# Symmetry is kept fixed so that the deformed cells stay on the strain states the fit expects.
_CHGNET = {"force_field_name": "CHGNet", "calculator_meta": CHGNET_CALCULATOR, "fix_symmetry": True, "steps": 500,
           "ionic_step_data": IONIC_STEP_DATA}


@dataclass
class _SymmetrizedInput:
    """Refines the symmetry and orients the lattice of the structure before atomate2's elastic flow."""

    #: refine the symmetry and orient the lattice before the flow (see the module docstring)
    symmetrize: bool = True

    def make(self, structure: Structure | OutputReference, *args, **kwargs):
        # atomate2's flow, with its relaxations keyed (a resume reruns only those that did not finish); the job
        # that makes the strained relaxations at run time is shown the store, where their keys are looked up
        def make_flow(*a, **kw):
            flow = super(_SymmetrizedInput, self.with_keyed_relaxations()).make(*a, **kw)
            for j, _ in flow.iterflow():
                if getattr(j.function, "__name__", "") == "run_elastic_deformations":
                    j.config.expose_store = True
            return flow

        if not self.symmetrize:
            return make_flow(structure, *args, **kwargs)
        if isinstance(structure, Structure):
            return make_flow(symmetrized_standard_cell(structure, self.symprec), *args, **kwargs)
        # the output of an earlier job (the campaign's relaxation): symmetrized when it exists
        prep = symmetrized_cell(structure, self.symprec)
        flow = make_flow(prep.output, *args, **kwargs)
        return Flow([prep, flow], output=flow.output, name=flow.name)

    def with_keyed_relaxations(self):
        """This Maker with its bulk and strained relaxations under keys of their own (``KeyedSubJobMaker``):
        in a campaign a finished relaxation is found stored and not run again."""
        def keyed(maker, task):
            if maker is None or isinstance(maker, KeyedSubJobMaker):
                return maker
            return KeyedSubJobMaker(maker=maker, task=task)

        return dataclasses.replace(self, bulk_relax_maker=keyed(self.bulk_relax_maker, "elastic bulk relaxation"),
                                   elastic_relax_maker=keyed(self.elastic_relax_maker, "strained relaxation"))


@job(name="symmetrized standard cell")
def symmetrized_cell(structure: Structure, symprec: float) -> Structure:
    """``analysis.elastic.symmetrized_standard_cell`` as a job, for a structure known only at run time."""
    return symmetrized_standard_cell(structure, symprec)


@dataclass
class MLIPElasticMaker(_SymmetrizedInput, ForceFieldElasticMaker):
    """CHGNet elastic tensor: tight cell relaxation, then fixed-cell relaxations of strained cells."""

    name: str = "mlip elastic"
    bulk_relax_maker: ForceFieldRelaxMaker | None = field(
        default_factory=lambda: ForceFieldRelaxMaker(relax_cell=True, relax_kwargs={"fmax": 5e-3}, **_CHGNET))
    elastic_relax_maker: ForceFieldRelaxMaker | None = field(
        default_factory=lambda: ForceFieldRelaxMaker(relax_cell=False, relax_kwargs={"fmax": 5e-3}, **_CHGNET))
    # +-1 % strains only: half of atomate2's default set, still a linear fit of each stress
    generate_elastic_deformations_kwargs: dict = field(
        default_factory=lambda: {"strain_magnitudes": [-0.01, 0.01]})


@dataclass
class VASPElasticMaker(_SymmetrizedInput, VaspElasticMaker):
    """atomate2's VASP elastic workflow (tight relax + strained relaxations), through custodian."""

    name: str = "vasp elastic"


@register("elastic", "mlip")
def _mlip_elastic():
    return MLIPElasticMaker()


@register("elastic", "vasp")
def _vasp_elastic():
    return VASPElasticMaker()
