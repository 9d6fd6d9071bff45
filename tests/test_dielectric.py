"""Static dielectric tensor on GPAW: the wiring into the defect stage, and a real (tiny) GPAW run on primitive LiF
checked against physical requirements (the ionic sum on analytic cases: tests/test_analysis_dielectric.py)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import lif
from jobflow import job

from coatflow.makers.dielectric import GpawDielectricMaker
from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.errors import CoatflowError


def test_bad_maker_settings_are_a_one_line_error():
    with pytest.raises(CoatflowError, match="displacement"):
        GpawDielectricMaker(displacement=0.5)
    with pytest.raises(CoatflowError, match="positive: nbands"):
        GpawDielectricMaker(nbands=0)


# -- wiring into the defect stage ------------------------------------------------------------------------


def _defect_settings(**extra):
    from coatflow.launchers.config import DefectsConfig

    dc = DefectsConfig(include=["v_Li"], min_length=4.0, max_atoms=16, **extra)
    return {**dc.model_dump(exclude={"materials", "dielectric"}), "backend": "gpaw"}


def _planned(settings):
    from coatflow.workflows.defects import defect_jobs

    jobs = {}

    def add(factory, task, label, final):
        j = factory()
        jobs[(task, label)] = j
        return j.output, j.uuid

    defect_jobs({"material_id": "defects-LiF", "formula": "LiF"}, lif(), None, None, {}, settings, add)
    return jobs


def test_dielectric_job_planned_only_without_a_config_value():
    from coatflow.workflows.defects import CONFIG_DIELECTRIC, GPAW_DIELECTRIC

    given = _planned({**_defect_settings(), "dielectric": 9.0, "dielectric_source": CONFIG_DIELECTRIC})
    assert ("dielectric", "primitive") not in given
    assert given[("defect_thermo", "summary")].function_args[10] == 9.0

    computed = _planned({**_defect_settings(dielectric_calc={"ecut": 350, "nbands": 20}), "dielectric": None,
                         "dielectric_source": GPAW_DIELECTRIC})
    eps_job = computed[("dielectric", "primitive")]
    assert eps_job.maker.ecut == 350 and eps_job.maker.nbands == 20
    assert computed[("defect_thermo", "summary")].function_args[10].uuid == eps_job.uuid


def test_dielectric_tensor_from_config_or_doc():
    from coatflow.workflows.analysis.defects import config_dielectric
    from coatflow.workflows.defects import CONFIG_DIELECTRIC, dielectric_input

    eps, source, _ = dielectric_input(9.0, CONFIG_DIELECTRIC)
    assert np.allclose(eps, 9.0 * np.eye(3)) and source == CONFIG_DIELECTRIC
    doc = {"structure": lif().as_dict(), "formula": "LiF", "eps_electronic": np.eye(3).tolist(),
           "eps_ionic": (7 * np.eye(3)).tolist(), "eps_total": (8 * np.eye(3)).tolist(), "eps_total_average": 8.0,
           "born_charges": [np.eye(3).tolist(), (-np.eye(3)).tolist()], "born_asr_violation": 0.0,
           "phonon_frequencies": [0, 0, 0, 300, 300, 300], "acoustic_modes": [0, 1, 2],
           "settings": {"ecut": 300}, "elapsed_time": 12.0}
    eps, source, seconds = dielectric_input(doc, "ignored")
    assert np.allclose(eps, 8 * np.eye(3)) and source.startswith("gpaw (") and seconds == 12.0
    with pytest.raises(AnalysisError, match="defects.dielectric.LiF"):
        config_dielectric(-1.0, "LiF")
    with pytest.raises(AnalysisError, match="3x3"):
        config_dielectric([1.0, 2.0], "LiF")


# -- a real GPAW run on primitive LiF ----------------------------------------------------------------------

#: deliberately tiny: 3x3x3 k-points for the 12 displacement runs, 4x4x4 for eps_inf, 300 eV, 24 bands (~35 s).
#: Measured: Z* +-1.052, eps_inf 2.07, omega_TO 315-317 cm^-1, eps_ion 6.55, eps_0 8.61 (converged: docs/defects.md)
TINY = {"ecut": 300.0, "kpt_density": 1.0, "displacement": 0.02, "eps_kpt_density": 1.2, "nbands": 24,
        "response_ecut": 30.0}


@job
def _freysoldt_input(doc):
    """What the defect analysis reads from the stored, resolved DielectricDoc."""
    from coatflow.workflows.defects import dielectric_input

    eps, source, seconds = dielectric_input(doc, "unused")
    return {"eps": eps.tolist(), "source": source, "seconds": seconds}


@pytest.fixture(scope="module")
def lif_run(tmp_path_factory):
    """(DielectricDoc, what a downstream job read from it) of one tiny GPAW run, through a JobStore with the
    data store the campaign uses."""
    import os

    from jobflow import Flow, JobStore, run_locally
    from maggma.stores import MemoryStore

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    eps_job = GpawDielectricMaker(**TINY).make(lif())
    reader = _freysoldt_input(eps_job.output)
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("lif_dielectric"))
    try:
        responses = run_locally(Flow([eps_job, reader]), store=store, ensure_success=True, log=False)
    finally:
        os.chdir(cwd)
    return responses[eps_job.uuid][1].output, responses[reader.uuid][1].output


@pytest.fixture(scope="module")
def lif_dielectric(lif_run):
    return lif_run[0]


def test_defect_analysis_reads_the_stored_doc(lif_run):
    doc, read = lif_run
    assert np.allclose(read["eps"], doc.eps_total)
    assert read["source"].startswith("gpaw (Berry-phase Born charges") and "ecut 300.0" in read["source"]
    assert read["seconds"] == pytest.approx(doc.elapsed_time)


def test_lif_born_charges(lif_dielectric):
    doc = lif_dielectric
    raw = np.array(doc.born_charges_raw)
    assert np.abs(raw.sum(axis=0)).max() < 0.1  # acoustic sum rule, before it is imposed
    assert doc.born_asr_violation < 0.1
    z = np.array(doc.born_charges)
    species = [s.specie.symbol for s in doc.structure]
    for sym, sign in (("Li", 1), ("F", -1)):
        zk = z[species.index(sym)]
        assert np.allclose(zk, np.eye(3) * zk[0, 0], atol=0.02)  # isotropic (cubic site)
        assert zk[0, 0] == pytest.approx(sign * 1.0, abs=0.25)  # formal +-1; exp. dynamic |Z*| = 1.05


def test_lif_dielectric_tensor(lif_dielectric):
    doc = lif_dielectric
    el, ion, tot = (np.array(x) for x in (doc.eps_electronic, doc.eps_ionic, doc.eps_total))
    for eps in (el, ion, tot):  # cubic: isotropic
        assert np.allclose(eps, np.eye(3) * eps[0, 0], atol=0.02 * eps[0, 0])
    assert 1.5 < el[0, 0] < 3.0  # exp. eps_inf 1.96
    assert tot[0, 0] > el[0, 0]
    assert 5.0 < tot[0, 0] < 15.0  # exp. eps_0 9.0
    assert doc.eps_total_average == pytest.approx(np.trace(tot) / 3)
    freqs = np.array(doc.phonon_frequencies)
    optic = np.delete(freqs, doc.acoustic_modes)
    assert np.allclose(freqs[doc.acoustic_modes], 0.0, atol=1.0)
    assert np.allclose(optic, optic.mean(), rtol=0.02) and 200 < optic.mean() < 450  # exp. TO 306 cm^-1
    assert doc.displacement_runs == 12 and doc.elapsed_time > 0
    assert doc.settings["ecut"] == TINY["ecut"]
