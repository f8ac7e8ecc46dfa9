"""Template variables for journey sends: the personalization mapping campaigns use
(templates/personalization.py), compiled once per (template version, mapping).

Until that module is installed a small built-in reader covers the common keys (``body.N``,
``header.N``, ``buttons.I.N``) with the same value sources, so journeys work on their own.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import Any

from waconnect.journeys.values import MissingValue, resolve


class MappingProblem(ValueError):
    """The mapping does not fit the template; ``problems`` maps key -> reason."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


def _shared() -> Any:
    try:
        return importlib.import_module("waconnect.templates.personalization")
    except ImportError:
        return None


class _BuiltIn:
    """``body.1`` -> {"attribute": "name"}: positional body, header and button variables."""

    def __init__(self, mapping: Mapping[str, Any]) -> None:
        self.mapping = dict(mapping)
        for key in self.mapping:
            parts = key.split(".")
            ok = (len(parts) == 2 and parts[0] in ("body", "header") and parts[1].isdigit()) or (
                len(parts) == 3 and parts[0] == "buttons" and parts[1].isdigit()
            )
            if not ok:
                raise MappingProblem({key: "use body.N, header.N or buttons.I.N"})

    def components(
        self, attributes: Mapping[str, Any], event_properties: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        body: dict[int, str] = {}
        header: dict[int, str] = {}
        buttons: dict[int, dict[int, str]] = {}
        for key, spec in self.mapping.items():
            try:
                value = str(resolve(spec, attributes, event_properties or {}, None))
            except MissingValue as exc:
                raise MissingValue(f"missing_variable:{key}") from exc
            parts = key.split(".")
            if parts[0] == "body":
                body[int(parts[1])] = value
            elif parts[0] == "header":
                header[int(parts[1])] = value
            else:
                buttons.setdefault(int(parts[1]), {})[int(parts[2])] = value
        out: list[dict[str, Any]] = []
        if header:
            out.append({"type": "header", "parameters": _texts(header)})
        if body:
            out.append({"type": "body", "parameters": _texts(body)})
        for index, values in sorted(buttons.items()):
            out.append(
                {
                    "type": "button",
                    "sub_type": "url",
                    "index": str(index),
                    "parameters": _texts(values),
                }
            )
        return out


def _texts(values: dict[int, str]) -> list[dict[str, str]]:
    return [{"type": "text", "text": values[k]} for k in sorted(values)]


_cache: dict[str, Any] = {}


def personalizer(
    template_definition: dict[str, Any],
    version_key: str,
    mapping: Mapping[str, Any],
    cache_key: Any = None,
) -> Any:
    """A compiled mapping with ``.components(attributes, event_properties)``; MappingProblem
    when it does not fit the template. ``cache_key`` names a mapping that never changes
    (a published node); without it the mapping's content is the key."""
    if cache_key is not None:
        key: Any = (version_key, cache_key)
    else:
        key = version_key + json.dumps(mapping, sort_keys=True, default=str)
    found = _cache.get(key)
    if found is not None:
        return found
    shared = _shared()
    if shared is not None:
        try:
            compiled = shared.compile_mapping(
                template_definition, dict(mapping), events_allowed=True
            )
        except shared.MappingError as exc:
            problems = getattr(exc, "problems", None) or {"variables": str(exc)}
            raise MappingProblem(dict(problems)) from None
    else:
        compiled = _BuiltIn(mapping)
    if len(_cache) > 2000:
        _cache.clear()
    _cache[key] = compiled
    return compiled


def fill(
    compiled: Any, attributes: Mapping[str, Any], event_properties: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The send components; MissingValue("missing_variable:body.2") when a value is absent."""
    shared = _shared()
    try:
        return list(compiled.components(dict(attributes), dict(event_properties)))
    except MissingValue:
        raise
    except Exception as exc:
        if shared is not None and isinstance(exc, getattr(shared, "MissingVariable", ())):
            raise MissingValue(getattr(exc, "reason", str(exc))) from None
        raise
