"""Compatibility module: the thermodynamics moved to ``workflows/analysis/thermo.py`` (physics) and
``workflows/reference_data.py`` (shipped data, Materials Project entries).

Kept only for ``workflows/defects.py``, which still reads a window as a dict; delete this module when it
calls ``analysis.thermo.stability_window`` (a ``StabilityWindow``, AnalysisError when not defined) directly.
"""

from __future__ import annotations

import dataclasses

from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.analysis import thermo as _thermo
from coatflow.workflows.analysis.thermo import covers, in_chemsys, phase_diagram  # noqa: F401 - re-exported
from coatflow.workflows.analysis.thermo import on_hull as _on_hull  # noqa: F401 - re-exported


def stability_window(entry, entries, ion: str = "Li") -> dict:
    """``analysis.thermo.stability_window`` as a dict with ``status`` ("computed" | "not_computed")."""
    try:
        return {"status": "computed", **dataclasses.asdict(_thermo.stability_window(entry, entries, ion))}
    except AnalysisError as exc:
        return {"status": "not_computed", "reason": str(exc)}
