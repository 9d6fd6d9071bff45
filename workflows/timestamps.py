"""Times coatflow stores and compares: timezone-aware UTC.

jobflow writes a job's ``completed_at`` as naive local time (``datetime.now().isoformat()``), so two nodes
in different time zones, or a daylight-saving change, would order jobs wrongly. coatflow's job stores
(``launchers/stores.py``) rewrite it as aware UTC when the document is stored; a document stored before
that (or by a plain jobflow store) keeps the naive form, which :func:`utc_time` reads as this machine's
local time, so old and new values compare correctly. Every "which is newer" in coatflow goes through
:func:`is_newer` / :func:`newest`, never through string comparison.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal


def utc_time(value, naive: Literal["local", "utc"] = "local") -> datetime | None:
    """An aware UTC datetime from a datetime or an ISO string; None for None or an unreadable value.

    A naive value is local time (how jobflow writes ``completed_at``) or, with ``naive="utc"``, UTC (how
    pymongo returns dates).
    """
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC) if naive == "utc" else value.astimezone()
    return value.astimezone(UTC)


def utc_iso(value):
    """``value`` as an aware UTC ISO string with microseconds (``...+00:00``); an unreadable value unchanged."""
    t = utc_time(value)
    return value if t is None else t.isoformat(timespec="microseconds")


def now_utc() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


def is_newer(a, b) -> bool:
    """Whether time ``a`` is later than ``b`` (ISO strings or datetimes, aware or naive); a missing or
    unreadable time is older than any other."""
    ta, tb = utc_time(a), utc_time(b)
    return ta is not None and (tb is None or ta > tb)


def newest(values: Iterable):
    """The latest of ``values`` (as given, not converted); None if none is readable."""
    best = None
    for v in values:
        if utc_time(v) is not None and (best is None or is_newer(v, best)):
            best = v
    return best
