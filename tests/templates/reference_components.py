"""The reference for ``Personalizer.components``: the plain walk of a template definition
that the per-template fill plan (templates/personalization.py) replaced in the product. The
tests compare the two; the product keeps one builder."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from waconnect.templates.personalization import (
    _MEDIA_FORMATS,
    _URL_SAFE,
    _component,
    _components,
    _is_authentication,
    _upper,
    placeholders,
)


def build_components(
    definition: Mapping[str, Any], values: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """WhatsApp send components from converted values keyed as in the mapping: the
    straightforward walk of the definition on every call."""
    components = _components(definition)
    if _is_authentication(definition):
        return _authentication_components(components, values["body.1"])
    result = _part_components(components, values, "")
    offer = _component(components, "LIMITED_TIME_OFFER")
    if offer is not None and "lto.expiration" in values:
        expiry = {"expiration_time_ms": values["lto.expiration"]}
        result.append(
            {
                "type": "limited_time_offer",
                "parameters": [{"type": "limited_time_offer", "limited_time_offer": expiry}],
            }
        )
    carousel = _component(components, "CAROUSEL")
    if carousel is not None:
        cards = []
        for k, card in enumerate(carousel.get("cards") or ()):
            parts = [c for c in (card or {}).get("components") or () if isinstance(c, Mapping)]
            cards.append(
                {"card_index": k, "components": _part_components(parts, values, f"cards.{k}.")}
            )
        result.append({"type": "carousel", "cards": cards})
    return result


def _text_parameter(value: str, name: str) -> dict[str, str]:
    parameter = {"type": "text", "text": value}
    if not name.isdigit():
        parameter["parameter_name"] = name
    return parameter


def _part_components(
    components: Sequence[Mapping[str, Any]], values: Mapping[str, Any], prefix: str
) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    header = _component(components, "HEADER")
    if header is not None:
        parameter = _header_parameter(header, values, prefix)
        if parameter is not None:
            result.append({"type": "header", "parameters": [parameter]})
    body = _component(components, "BODY")
    if body is not None:
        names = placeholders(str(body.get("text") or ""))
        if names:
            parameters = [_text_parameter(values[f"{prefix}body.{n}"], n) for n in names]
            result.append({"type": "body", "parameters": parameters})
    buttons = _component(components, "BUTTONS")
    for index, button in enumerate((buttons or {}).get("buttons") or ()):
        if isinstance(button, Mapping):
            sent = _button_component(button, index, values, f"{prefix}buttons.{index}")
            if sent is not None:
                result.append(sent)
    return result


def _header_parameter(
    header: Mapping[str, Any], values: Mapping[str, Any], prefix: str
) -> dict[str, Any] | None:
    fmt = _upper(header.get("format") or "TEXT")
    if fmt == "TEXT":
        names = placeholders(str(header.get("text") or ""))
        return _text_parameter(values[f"{prefix}header.{names[0]}"], names[0]) if names else None
    if fmt in _MEDIA_FORMATS:
        kind = _MEDIA_FORMATS[fmt]
        media = dict(values[f"{prefix}header.media"])
        if kind != "document":
            media.pop("filename", None)  # only documents carry a file name
        return {"type": kind, kind: media}
    if fmt == "LOCATION":
        return {"type": "location", "location": dict(values[f"{prefix}header.location"])}
    return None


def _button_component(
    button: Mapping[str, Any], index: int, values: Mapping[str, Any], where: str
) -> dict[str, Any] | None:
    kind = _upper(button.get("type"))
    base: dict[str, Any] = {"type": "button", "index": str(index)}
    if kind == "URL":
        names = placeholders(str(button.get("url") or ""))
        if not names:
            return None
        suffix = quote(str(values[f"{where}.{names[0]}"]), safe=_URL_SAFE)
        return {**base, "sub_type": "url", "parameters": [{"type": "text", "text": suffix}]}
    if kind == "COPY_CODE":
        code = values[f"{where}.1"]
        return {
            **base,
            "sub_type": "copy_code",
            "parameters": [{"type": "coupon_code", "coupon_code": code}],
        }
    if kind == "QUICK_REPLY" and f"{where}.payload" in values:
        payload = values[f"{where}.payload"]
        return {
            **base,
            "sub_type": "quick_reply",
            "parameters": [{"type": "payload", "payload": payload}],
        }
    return None


def _authentication_components(
    components: Sequence[Mapping[str, Any]], code: str
) -> list[dict[str, Any]]:
    """WhatsApp's authentication send: the code in the body and again on the OTP button."""
    result: list[dict[str, Any]] = [
        {"type": "body", "parameters": [{"type": "text", "text": code}]}
    ]
    buttons = _component(components, "BUTTONS")
    for index, button in enumerate((buttons or {}).get("buttons") or ()):
        if isinstance(button, Mapping) and _upper(button.get("type")) == "OTP":
            result.append(
                {
                    "type": "button",
                    "sub_type": "url",
                    "index": str(index),
                    "parameters": [{"type": "text", "text": code}],
                }
            )
    return result
