"""The CHGNet calculator, with its model loaded once per process rather than once per job.

chgnet (and torch) are imported when the calculator is first asked for, not with this module: atomate2
looks ``CHGNetCalculator`` up by its import path (``CHGNET_CALCULATOR``) only when a job runs, so planning
a campaign whose jobs are all stored never pays for them.

The mlip backend's second model, SevenNet-0 (``SevenNetCalculator``, weights inside the sevenn wheel), is
loaded the same way; ``with_mlip_model`` puts any mlip Maker on one of ``MLIP_MODELS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from atomate2.forcefields.jobs import _FORCEFIELD_DATA_OBJECTS, ForceFieldRelaxMaker
from jobflow import JobConfig, job

from coatflow.makers.restarts import RestartingAseRelax

#: ``calculator_meta`` for atomate2's force-field makers: an import path atomate2 can call.
CHGNET_CALCULATOR = "coatflow.makers.mlip.CHGNetCalculator"

#: what each relaxation step keeps in its document: energies only. Structures, forces and stresses
#: at every step made the blobs that every later reference lookup loads (~0.2 MB per relaxation).
IONIC_STEP_DATA = ("energy",)


@lru_cache(maxsize=1)
def _chgnet_model():
    from chgnet.model import CHGNet

    return CHGNet.load(model_name="0.3.0", use_device="cpu", verbose=False)


@lru_cache(maxsize=1)
def _calculator_class() -> type:
    from chgnet.model.dynamics import CHGNetCalculator as _CHGNetCalculator

    class CHGNetCalculator(_CHGNetCalculator):
        """CHGNet 0.3.0 (weights ship in the chgnet wheel) around one shared, already loaded model."""

        def __init__(self, model=None, **kwargs):
            kwargs.setdefault("use_device", "cpu")
            super().__init__(model=model or _chgnet_model(), **kwargs)

    CHGNetCalculator.__module__, CHGNetCalculator.__qualname__ = __name__, "CHGNetCalculator"
    return CHGNetCalculator


# --- SevenNet-0, the second model of the mlip backend -----------------------------------------------

#: ``calculator_meta`` of SevenNet-0 (weights ship in the sevenn wheel): an import path atomate2 can call.
SEVENNET_CALCULATOR = "coatflow.makers.mlip.SevenNetCalculator"

#: the models of the mlip backend: name -> the force-field fields of atomate2's force-field Makers
#: (``force_field_name`` is atomate2's ``MLFF`` name; ``calculator_meta`` loads the shared model).
MLIP_MODELS: dict[str, dict[str, str]] = {
    "chgnet": {"force_field_name": "CHGNet", "calculator_meta": CHGNET_CALCULATOR},
    "sevennet": {"force_field_name": "SevenNet", "calculator_meta": SEVENNET_CALCULATOR},
}

#: the SevenNet checkpoint: atomate2's default (``MLFF.SevenNet`` -> ``model="7net-0"``), SevenNet-0 (11 Jul 2024)
SEVENNET_MODEL = "7net-0"


@lru_cache(maxsize=2)
def _sevennet_model(name: str = SEVENNET_MODEL):
    """The SevenNet network built once per process from the checkpoint inside the sevenn wheel (never a download)."""
    import os

    from sevenn import util

    path = util.pretrained_name_to_path(name) if not os.path.isfile(name) else name
    model = util.load_checkpoint(path).build_model()
    model.set_is_batch_data(False)
    return model


@lru_cache(maxsize=1)
def _sevennet_class() -> type:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sevenn.calculator import SevenNetCalculator as _SevenNetCalculator

    class SevenNetCalculator(_SevenNetCalculator):
        """SevenNet-0 (weights ship in the sevenn wheel) around one shared, already loaded network, on the CPU."""

        def __init__(self, model: str = SEVENNET_MODEL, **kwargs):
            kwargs.setdefault("device", "cpu")
            kwargs.pop("file_type", None)
            with warnings.catch_warnings():  # "no tensor product accelerator": none exists for the CPU
                warnings.simplefilter("ignore")
                super().__init__(model=_sevennet_model(model), file_type="model_instance", **kwargs)

    SevenNetCalculator.__module__, SevenNetCalculator.__qualname__ = __name__, "SevenNetCalculator"
    return SevenNetCalculator


def with_mlip_model(maker, model: str):
    """``maker`` (a Maker of the mlip backend) with every nested force-field Maker running ``model``.

    Walks the Maker's dataclass fields: each one that carries ``force_field_name`` and ``calculator_meta``
    (atomate2's force-field Makers) and runs another model is replaced by a copy with ``MLIP_MODELS[model]``,
    its ``calculator_kwargs`` starting from atomate2's defaults for that force field. A Maker already on
    ``model`` comes back as the same object (so its job keys do not change).
    """
    import dataclasses

    if model not in MLIP_MODELS:
        raise ValueError(f"unknown mlip model '{model}' (known: {', '.join(MLIP_MODELS)})")

    def swap(obj):
        if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
            return obj
        changes = {f.name: new for f in dataclasses.fields(obj) if f.init
                   and (new := swap(old := getattr(obj, f.name, None))) is not old}
        if (hasattr(obj, "calculator_meta") and str(getattr(obj, "force_field_name", "")).removeprefix("MLFF.")
                != MLIP_MODELS[model]["force_field_name"]):
            changes.update(MLIP_MODELS[model], calculator_kwargs={})
        return dataclasses.replace(obj, **changes) if changes else obj

    return swap(maker)


def __getattr__(name: str):
    if name == "CHGNetCalculator":  # built on first access, see the module docstring
        return _calculator_class()
    if name == "SevenNetCalculator":
        return _sevennet_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- force-field relaxations under a restart policy (makers/restarts.py) -------------------------


@dataclass
class RestartingForceFieldRelaxMaker(RestartingAseRelax, ForceFieldRelaxMaker):
    """atomate2's ``ForceFieldRelaxMaker`` under ``restarts``: a relaxation stopped by the time limit or out of
    steps goes on from the last geometry of its trajectory, up to the cap, each attempt in the job's document.
    Its key is that of ``ForceFieldRelaxMaker`` (``PHYSICAL_FIELDS`` of workflows/campaign.py)."""

    @job(data=_FORCEFIELD_DATA_OBJECTS, config=JobConfig(expose_store=True))
    def make(self, structure, prev_dir=None):
        """atomate2's ForceFieldRelaxMaker.make, its store exposed for the restart record."""
        return ForceFieldRelaxMaker.make.original(self, structure, prev_dir)
