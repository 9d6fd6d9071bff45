"""Which fields of a stage are settings: those annotated with a pydantic ``Field``."""

from __future__ import annotations

import dataclasses
import typing
from functools import cache

from pydantic.fields import FieldInfo


@cache
def config_fields(cls) -> dict[str, tuple[object, object]]:
    """name -> (annotated type, default) of every config field of the dataclass ``cls``, in order."""
    hints = typing.get_type_hints(cls, include_extras=True)
    out = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if typing.get_origin(hint) is typing.Annotated and any(isinstance(m, FieldInfo) for m in hint.__metadata__):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            out[f.name] = (hint, default)
    return out
