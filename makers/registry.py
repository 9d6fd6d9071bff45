"""Which Maker runs each (task, backend) pair, and whether that backend can run here.

A backend that cannot run is rejected before any job starts, naming what is missing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from jobflow import Maker

from coatflow.workflows.errors import CoatflowError

_MAKERS: dict[tuple[str, str], Callable[[], Maker]] = {}


def register(task: str, backend: str):
    """Decorator: ``factory`` builds the Maker that runs ``task`` with ``backend``."""

    def wrap(factory: Callable[[], Maker]):
        _MAKERS[(task, backend)] = factory
        return factory

    return wrap


def backend_problems(backend: str) -> list[str]:
    """What is missing on this machine for ``backend``; empty when it can run."""
    if backend == "mlip":
        spec = importlib.util.find_spec("chgnet")
        if spec is None:
            return ["the chgnet package (pip install chgnet)"]
        weights = Path(spec.origin).parent / "pretrained" / "0.3.0"
        if not any(weights.glob("*.pth.tar")):
            return [f"the CHGNet 0.3.0 model weights in {weights}"]
        return []
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
    if (task, backend) not in _MAKERS:
        known = sorted(b for t, b in _MAKERS if t == task)
        raise CoatflowError(f"task '{task}' has no '{backend}' backend (available: {', '.join(known) or 'none'})")
    missing = backend_problems(backend)
    if missing:
        raise CoatflowError(f"backend '{backend}' for task '{task}' cannot run here: missing {'; '.join(missing)}")


def get_maker(task: str, backend: str) -> Maker:
    """The Maker for ``task`` on ``backend``, after checking the backend can run."""
    _load_makers()
    check_backend(task, backend)
    return _MAKERS[(task, backend)]()


def _load_makers() -> None:
    # Importing the maker modules fills the registry.
    from coatflow.makers import relax  # noqa: F401
    from coatflow.makers import adsorption  # noqa: F401
    from coatflow.makers import gpaw, slab  # noqa: F401
    from coatflow.makers import elastic  # noqa: F401
    from coatflow.makers import defects  # noqa: F401
    from coatflow.makers import dielectric  # noqa: F401
    from coatflow.makers import neb  # noqa: F401
    from coatflow.makers import band_gap  # noqa: F401
