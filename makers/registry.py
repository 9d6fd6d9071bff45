"""Which Maker runs each (task, backend) pair, and whether that backend can run here.

The table names each Maker by import path, so asking for one imports only its module (CHGNet, torch,
atomate2's VASP code and GPAW load only when a stage needs them). A backend that cannot run is
rejected before any job starts, naming what is missing. The mlip backend has two models, CHGNet and
SevenNet-0 (``MLIP_MODELS``): ``mlip:sevennet`` names the second.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
from pathlib import Path

from jobflow import Maker

from coatflow.workflows.errors import CoatflowError

#: (task, backend) -> "module:callable" returning the Maker.
MAKERS: dict[tuple[str, str], str] = {
    ("relax", "mlip"): "coatflow.makers.relax:MLIPBulkRelaxMaker",
    ("relax", "vasp"): "coatflow.makers.relax:VaspBulkRelaxMaker",
    ("relax", "gpaw"): "coatflow.makers.gpaw:GpawRelaxMaker",
    ("static", "gpaw"): "coatflow.makers.gpaw:GpawStaticMaker",
    ("elastic", "mlip"): "coatflow.makers.elastic:MLIPElasticMaker",
    ("elastic", "vasp"): "coatflow.makers.elastic:VASPElasticMaker",
    ("adsorption", "mlip"): "coatflow.makers.adsorption:_mlip_adsorption",
    ("band_gap", "gpaw"): "coatflow.makers.band_gap:_gpaw_band_gap",
    ("band_gap", "vasp"): "coatflow.makers.band_gap:_vasp_band_gap",
    ("defect", "gpaw"): "coatflow.makers.defects:_gpaw_defect",
    ("defect", "vasp"): "coatflow.makers.defects:_vasp_defect",
    ("dielectric", "gpaw"): "coatflow.makers.dielectric:_gpaw_dielectric",
    ("dielectric", "vasp"): "coatflow.makers.defects:_vasp_dielectric",
    ("neb", "mlip"): "coatflow.makers.neb:_mlip_neb",
    ("neb", "gpaw"): "coatflow.makers.neb:_gpaw_neb",
    ("neb", "vasp"): "coatflow.makers.neb:_vasp_neb",
    ("slab_static", "gpaw"): "coatflow.makers.slab:_gpaw_slab",
    ("bulk_reference", "gpaw"): "coatflow.makers.slab:_gpaw_bulk_reference",
    ("slab_relax", "vasp"): "coatflow.makers.slab:_vasp_slab_relax",
    ("slab_static", "vasp"): "coatflow.makers.slab:_vasp_slab",
}


#: models of the mlip backend (``makers/mlip.py`` ``MLIP_MODELS``): name -> (package, its weights in the
#: wheel, relative to the package). A backend written ``mlip:<model>`` runs the mlip Makers of the table
#: above on that model; plain ``mlip`` is CHGNet.
MLIP_MODELS: dict[str, tuple[str, str]] = {
    "chgnet": ("chgnet", "pretrained/0.3.0/*.pth.tar"),
    "sevennet": ("sevenn", "pretrained_potentials/SevenNet_0__11Jul2024/checkpoint_sevennet_0.pth"),
}


def split_backend(backend: str) -> tuple[str, str | None]:
    """``'mlip:sevennet'`` -> ``('mlip', 'sevennet')``; a backend without a model -> ``(backend, None)``."""
    base, _, model = backend.partition(":")
    return base, model or None


def register(task: str, backend: str):
    """Kept for maker modules that still decorate their factories; the table above is what counts."""

    def wrap(factory):
        return factory

    return wrap


def backend_problems(backend: str) -> list[str]:
    """What is missing on this machine for ``backend``; empty when it can run."""
    backend, model = split_backend(backend)
    if backend == "mlip":
        if (model or "chgnet") not in MLIP_MODELS:
            return [f"an mlip model named '{model}' (known: {', '.join(MLIP_MODELS)})"]
        package, weights = MLIP_MODELS[model or "chgnet"]
        spec = importlib.util.find_spec(package)
        if spec is None:
            return [f"the {package} package (pip install {package})"]
        folder = Path(spec.origin).parent
        if not any(folder.glob(weights)):
            return [f"the {model or 'chgnet'} model weights {folder / weights}"]
        return []
    if model is not None:
        return [f"a model choice for backend '{backend}' (only mlip has models: {', '.join(MLIP_MODELS)})"]
    if backend == "vasp":
        from atomate2.settings import Atomate2Settings
        from pymatgen.core import SETTINGS

        missing = []
        cmd = Atomate2Settings().VASP_CMD.split()[0]
        if shutil.which(os.path.expandvars(cmd)) is None:
            missing.append(f"the VASP command '{cmd}' on PATH (ATOMATE2_VASP_CMD)")
        psp = SETTINGS.get("PMG_VASP_PSP_DIR")
        if not psp or not Path(psp).is_dir():
            missing.append("POTCARs (PMG_VASP_PSP_DIR in ~/.config/.pmgrc.yaml)")
        return missing
    if backend == "gpaw":
        if importlib.util.find_spec("gpaw") is None:
            return ["the gpaw package (pip install gpaw gpaw-data; see docs/install.md)"]
        return []
    return [f"a backend named '{backend}' (known: mlip, vasp, gpaw)"]


def check_backend(task: str, backend: str) -> None:
    """Raise a one-line error when ``task`` has no ``backend`` or the backend cannot run here (imports nothing)."""
    if (task, split_backend(backend)[0]) not in MAKERS:
        known = sorted(b for t, b in MAKERS if t == task)
        raise CoatflowError(f"task '{task}' has no '{backend}' backend (available: {', '.join(known) or 'none'})")
    missing = backend_problems(backend)
    if missing:
        raise CoatflowError(f"backend '{backend}' for task '{task}' cannot run here: missing {'; '.join(missing)}")


def get_maker(task: str, backend: str) -> Maker:
    """The Maker for ``task`` on ``backend``, after checking the backend can run."""
    check_backend(task, backend)
    backend, model = split_backend(backend)
    module, name = MAKERS[(task, backend)].split(":")
    maker = getattr(importlib.import_module(module), name)()
    if model is None:
        return maker
    from coatflow.makers.mlip import with_mlip_model

    return with_mlip_model(maker, model)


def has_maker(task: str, backend: str) -> bool:
    return (task, backend) in MAKERS


def maker_factory(task: str, backend: str):
    """The callable that builds the Maker (imports its module), without the backend check."""
    module, name = MAKERS[(task, backend)].split(":")
    return getattr(importlib.import_module(module), name)


class _Factories(dict):
    """Read-only view of MAKERS as factories; for callers written against the old registry dict."""

    def __getitem__(self, key):
        return maker_factory(*key)

    def __contains__(self, key):
        return key in MAKERS


_MAKERS = _Factories()


def _load_makers() -> None:
    """Nothing to load: the table imports each Maker's module when it is asked for."""
