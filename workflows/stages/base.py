"""What every funnel stage is: a jobflow Maker whose fields are its settings, plus shared verdict helpers.

A stage's settings are dataclass fields annotated with a pydantic ``Field`` (range, description); the
config section of the stage is generated from exactly those fields (``launchers/config.py``) and applied
in one step (``Stage(**section)``), and the commented YAML of ``coatflow init`` is written from their
descriptions. Fields without a ``Field`` annotation (calculator Makers) are not config.

``plan(planner, plan, upstream, verdict)`` adds the stage's calculations and its verdict job through the
planner (``workflows/campaign.py``, the only place that knows keys and stores) and returns the verdict,
or None when a stored verdict failed. ``key_settings()`` lists what the verdict's key depends on.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

from jobflow import Maker, Response
from pymatgen.core import Structure

from coatflow.workflows.phase_diagrams import formula_level
from coatflow.workflows.schemas import StageResult
from coatflow.workflows.stages.config_fields import config_fields

Backend = Literal["mlip", "vasp", "gpaw"]


@dataclasses.dataclass
class Stage(Maker):
    """Base of the funnel stages (see the module docstring)."""

    #: the stage's name: its config section, its column in the table, its ``metadata.coatflow.stage``
    stage: ClassVar[str] = ""
    #: the stage works on the phase diagram of the candidate's formula (workflows/phase_diagrams.py)
    phase_diagram: ClassVar[bool] = False
    name: str = ""

    def needs_structure(self, config) -> bool:
        """Whether the stage needs the candidate's structure. A phase-diagram stage on a database scale
        needs only the formula, so a formula with no structure (bulk relax: "no prototype") still gets it."""
        return not (self.phase_diagram and formula_level(config))

    def settings(self) -> dict[str, Any]:
        """The stage's config fields and their values."""
        return {f: getattr(self, f) for f in config_fields(type(self))}

    def calculators(self) -> list[tuple[str, str]]:
        """(task, backend) of each calculator the stage runs (checked before any job starts)."""
        return []

    def key_settings(self) -> dict[str, Any]:
        """What the stage's verdict key depends on: by default every setting."""
        return self.settings()

    def plan(self, planner, plan, upstream: str, verdict):  # pragma: no cover - every stage overrides it
        raise NotImplementedError

    @classmethod
    def value_text(cls, summary: dict) -> str:
        """The stage's value as the ranked table shows it (``summary``: a stored ``StageSummary``)."""
        return "" if summary.get("value") is None else f"{summary['value']:.3g} "

    @classmethod
    def note(cls, details: dict) -> str:
        """The one detail the stage's table cell shows besides value and status."""
        return ""


def respond(result: StageResult) -> Response:
    """A verdict job's response: a failed stage stops every later job of the candidate."""
    return Response(output=result, stop_children=not result.passed)


def not_computed(cls: type[StageResult], ident: dict, structure, reason: str, **kw) -> Response:
    """A verdict of ``cls`` that could not be computed (it does not stop the funnel), with why."""
    return respond(cls(**ident, status="not_computed", structure=structure, reason=reason, **kw))


def as_structure(s) -> Structure | None:
    if s is None or isinstance(s, Structure):
        return s
    return Structure.from_dict(s)
