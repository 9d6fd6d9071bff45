"""The coatflow command as a user runs it: a real (tiny) campaign, a rerun, and bad inputs."""

import json
import subprocess
import sys

import pytest

from coatflow.launchers.cli import main
from coatflow.launchers.config import load_config
from coatflow.launchers.stores import CampaignStores


def _count_docs(config_path):
    stores = CampaignStores(load_config(config_path)).connect()
    try:
        return stores.jobs.docs_store.count(), stores.candidates.count()
    finally:
        stores.close()


def test_campaign_runs_reruns_without_new_documents_and_queries(write_config, structure_dir, capsys):
    cfg = write_config(candidates={"source": "files", "paths": [str(structure_dir)]}, run={"stop_after": "bulk_relax"})
    assert main(["run", "-c", cfg]) == 0
    jobs, cands = _count_docs(cfg)
    # Li2O, LiF: filter + relax + verdict; LiRhO2 stops at the filter (precious Rh)
    assert (jobs, cands) == (7, 3)

    capsys.readouterr()
    assert main(["query", "-c", cfg, "--json"]) == 0
    docs = {d["formula"]: d for d in json.loads(capsys.readouterr().out)}
    assert docs["LiRhO2"]["failed_stage"] == "database_filter"
    assert "precious Rh" in docs["LiRhO2"]["stages"]["database_filter"]["reason"]
    assert "bulk_relax" not in docs["LiRhO2"]["stages"]
    li2o = docs["Li2O"]["stages"]["bulk_relax"]
    assert li2o["status"] == "passed" and li2o["backend"] == "mlip"
    assert -6.0 < li2o["value"] < -4.0  # CHGNet energy per atom of Li2O, eV
    assert 22.0 < li2o["details"]["volume"] < 27.0  # primitive Li2O cell (expt. 24.5 A^3)
    assert list(docs)[-1] == "LiRhO2"  # the failed candidate ranks last
    assert docs["Li2O"]["stages"]["database_filter"]["status"] == "passed"  # the MP snapshot's gap and E_hull

    assert main(["run", "-c", cfg]) == 0
    assert _count_docs(cfg) == (jobs, cands)
    assert "0 already complete" not in capsys.readouterr().err


def test_builder_is_incremental_and_idempotent(write_config, structure_dir):
    from coatflow.launchers.local import build_candidates

    cfg = write_config(candidates={"source": "files", "paths": [str(structure_dir / "LiRhO2.json")]},
                       run={"stop_after": "bulk_relax"})
    assert main(["run", "-c", cfg]) == 0
    stores = CampaignStores(load_config(cfg)).connect()
    try:
        before = stores.candidates.query_one({"material_id": "file-LiRhO2"}, properties={"_id": 0})
        assert build_candidates(stores) == 0  # nothing new since the last build
        stores.candidates.remove_docs({})
        stores.candidates.update([{"material_id": "file-LiRhO2", "formula": "LiRhO2",
                                   "last_job_completed_at": "0000"}], key="material_id")
        assert build_candidates(stores) == 1
        assert stores.candidates.query_one({"material_id": "file-LiRhO2"}, properties={"_id": 0}) == before
    finally:
        stores.close()


@pytest.mark.parametrize("case", ["unreadable", "no_li", "unknown_key", "unreachable_mongodb", "missing_mp_key",
                                  "unknown_cathode", "bad_state_of_charge"])
def test_bad_input_is_one_line_nonzero_and_writes_nothing(case, tmp_path, monkeypatch, capsys):
    store = tmp_path / "store"
    sections = {"store": {"path": str(store)}}
    if case == "unreadable":
        (tmp_path / "bad.cif").write_text("garbage\n")
        sections["candidates"] = {"source": "files", "paths": [str(tmp_path / "bad.cif")]}
    elif case == "no_li":
        from pymatgen.core import Lattice, Structure

        Structure(Lattice.cubic(4.2), ["Mg", "O"], [[0, 0, 0], [0.5] * 3]).to(filename=str(tmp_path / "MgO.cif"))
        sections["candidates"] = {"source": "files", "paths": [str(tmp_path / "MgO.cif")]}
    elif case == "unknown_key":
        sections["shear_modulus"] = {"shear_min": 10}
    elif case == "unreachable_mongodb":
        sections["store"] = {"kind": "mongodb", "uri": "mongodb://127.0.0.1:9/"}
        sections["candidates"] = {"source": "formulas", "formulas": ["LiAlO2"]}
    elif case == "missing_mp_key":
        monkeypatch.delenv("MP_API_KEY", raising=False)
        sections["candidates"] = {"source": "materials_project"}
    elif case == "unknown_cathode":
        sections["candidates"] = {"source": "formulas", "formulas": ["LiAlO2"]}
        sections["potential_maps"] = {"stacks": [{"electrolyte": "LiF", "cathode": "LiXx2"}]}
    elif case == "bad_state_of_charge":
        sections["potential_maps"] = {"states_of_charge": [0.0, 1.5]}
    import yaml

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(sections))
    code = main(["run", "-c", str(cfg)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("coatflow: error:") and "\n" not in err and "Traceback" not in err
    expected = {"unreadable": "cannot read structure file", "no_li": "contains no Li",
                "unknown_key": "shear_modulus.shear_min: unknown key", "unreachable_mongodb": "cannot reach the mongodb",
                "missing_mp_key": "MP_API_KEY is not set", "unknown_cathode": "no starting structure for 'LiXx2'",
                "bad_state_of_charge": "potential_maps.states_of_charge"}[case]
    assert expected in err
    if store.exists():  # nothing written: no job or candidate documents
        stores = CampaignStores(load_config(cfg)).connect()
        assert stores.jobs.docs_store.count() == 0 and stores.candidates.count() == 0
        stores.close()


def test_console_script_is_installed(tmp_path):
    out = subprocess.run([sys.executable, "-m", "coatflow.launchers.cli", "init", str(tmp_path / "c.yaml")],
                         capture_output=True, text=True)
    assert out.returncode == 0 and (tmp_path / "c.yaml").exists()
    out = subprocess.run(["coatflow", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "query" in out.stdout


def test_a_failing_job_is_reported_and_resumed(write_config, structure_dir, capsys, monkeypatch):
    """A relaxation that raises is reported, nothing after it runs, and a rerun resumes it."""
    from coatflow.makers import relax

    cfg = write_config(candidates={"source": "files", "paths": [str(structure_dir / "Li2O.cif")]},
                       run={"stop_after": "bulk_relax", "workers": 1})  # in-process, so the patch applies
    original = relax.MLIPBulkRelaxMaker.run_ase

    def broken(self, *args, **kwargs):
        raise RuntimeError("node lost")

    monkeypatch.setattr(relax.MLIPBulkRelaxMaker, "run_ase", broken)
    assert main(["run", "-c", cfg]) == 1
    err = capsys.readouterr().err
    assert "job failed" in err and "RuntimeError: node lost" in err and "coatflow run` again" in err
    assert _count_docs(cfg) == (1, 1)  # only the filter verdict is stored

    monkeypatch.setattr(relax.MLIPBulkRelaxMaker, "run_ase", original)
    assert main(["run", "-c", cfg]) == 0
    assert _count_docs(cfg) == (3, 1)
