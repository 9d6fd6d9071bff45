"""The CHGNet calculator, with its model loaded once per process rather than once per job.

chgnet (and torch) are imported when the calculator is first asked for, not with this module: atomate2
looks ``CHGNetCalculator`` up by its import path (``CHGNET_CALCULATOR``) only when a job runs, so planning
a campaign whose jobs are all stored never pays for them.
"""

from __future__ import annotations

from functools import lru_cache

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


def __getattr__(name: str):
    if name == "CHGNetCalculator":  # built on first access, see the module docstring
        return _calculator_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
