"""Config blocks to dataclasses: one rule for every stage's settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def from_config(cls: type[T], cfg: Mapping[str, Any] | None, aliases: Mapping[str, str] | None = None) -> T:
    """Dataclass ``cls`` from the keys of ``cfg`` it names; other keys are ignored (they belong to
    other parts of the stage) and missing or null ones keep their defaults. ``aliases`` renames
    config keys that are Python keywords (``lambda`` -> ``lam``)."""
    aliases = aliases or {}
    names = {f.name for f in fields(cls)}
    values = {aliases.get(k, k): v for k, v in (cfg or {}).items()}
    return cls(**{k: v for k, v in values.items() if k in names and v is not None})
