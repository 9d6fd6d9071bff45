"""The CHGNet calculator, with its model loaded once per process rather than once per job."""

from __future__ import annotations

from functools import lru_cache

from chgnet.model.dynamics import CHGNetCalculator as _CHGNetCalculator

#: ``calculator_meta`` for atomate2's force-field makers: an import path atomate2 can call.
CHGNET_CALCULATOR = "coatflow.makers.mlip.CHGNetCalculator"

#: what each relaxation step keeps in its document: energies only. Structures, forces and stresses
#: at every step made the blobs that every later reference lookup loads (~0.2 MB per relaxation).
IONIC_STEP_DATA = ("energy",)


@lru_cache(maxsize=1)
def _chgnet_model():
    from chgnet.model import CHGNet

    return CHGNet.load(model_name="0.3.0", use_device="cpu", verbose=False)


class CHGNetCalculator(_CHGNetCalculator):
    """CHGNet 0.3.0 (weights ship in the chgnet wheel) around one shared, already loaded model."""

    def __init__(self, model=None, **kwargs):
        kwargs.setdefault("use_device", "cpu")
        super().__init__(model=model or _chgnet_model(), **kwargs)
