"""WhatsApp's template rules (whatsapp-rules.md §1), checked on a template definition.

``validate_template`` returns every violation at once as ``{path: reason}``. Paths name the part
of the template the way people do — ``body``, ``header.example``, ``buttons.2.url``,
``carousel.cards.1.body`` — and reasons give the limit (``1025 characters, the limit is 1024``).

Only rules that the template alone decides, with a definite condition, live here. Account
limits (templates per WABA, creation rate) and rules without a published threshold (too many
variables for the amount of text) are out. The engagement suite's narrower UI limits
(contracts.md A7.1: five quick replies, same-type card buttons...) are deliberately not imposed:
WhatsApp is the authority, and a template approved there must copy in unchanged.

Everything works on plain dicts in WhatsApp's own format, so the same checks serve the API
and a provider import. WhatsApp accepts its enum values in any case; ``normalized`` writes
them upper case (component and button types, header formats, category, status) once, and the
checks read only normalized definitions.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

__all__ = [
    "CATEGORIES",
    "COMPONENT_TYPES",
    "LANGUAGES",
    "STATUSES",
    "TEMPLATE_TYPES",
    "normalized",
    "template_type",
    "validate_template",
]

# §1.3, "updated May 2026". Codes are case-sensitive and use "_" (en_US, never en-US).
_LANGUAGE_LIST = """
    af sq ar ar_EG ar_AE ar_LB ar_MA ar_QA az be_BY bn bn_IN bg ca zh_CN zh_HK zh_TW hr cs da
    prs_AF nl nl_BE en en_GB en_US en_AE en_AU en_CA en_GH en_IE en_IN en_JM en_MY en_NZ en_QA
    en_SG en_UG en_ZA et fil fi fr fr_BE fr_CA fr_CH fr_CI fr_MA ka de de_AT de_CH el gu ha he hi
    hu id ga it ja kn kk rw_RW ko ky_KG lo lv lt mk ms ml mr nb ps_AF fa pl pt_BR pt_PT pa ro ru
    sr si_LK sk sl es es_AR es_CL es_CO es_CR es_DO es_EC es_HN es_MX es_PA es_PE es_ES es_UY sw
    sv ta te th tr uk ur uz vi zu"""
LANGUAGES = frozenset(_LANGUAGE_LIST.split())
_LANGUAGES_BY_LOWER = {code.lower(): code for code in LANGUAGES}

CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")
# §1.10: WhatsApp's status names; only APPROVED can be sent.
STATUSES = (
    "APPROVED",
    "PENDING",
    "REJECTED",
    "PAUSED",
    "DISABLED",
    "IN_APPEAL",
    "FLAGGED",
    "REINSTATED",
    "PENDING_DELETION",
    "DELETED",
    "LIMIT_EXCEEDED",
    "LOCKED",
    "ARCHIVED",
    "UNARCHIVED",
)
COMPONENT_TYPES = ("HEADER", "BODY", "FOOTER", "BUTTONS", "LIMITED_TIME_OFFER", "CAROUSEL")
TEMPLATE_TYPES = ("basic", "limited_time_offer", "carousel", "authentication")
PARAMETER_FORMATS = ("positional", "named")

NAME_LIMIT = 512
HEADER_FORMATS = ("TEXT", "IMAGE", "VIDEO", "DOCUMENT", "GIF", "LOCATION")
HEADER_TEXT_LIMIT = 60
HEADER_VARIABLE_LIMIT = 1
BODY_LIMIT = 1024
LTO_BODY_LIMIT = 600
FOOTER_LIMIT = 60
LTO_TEXT_LIMIT = 16

BUTTON_TYPES = (
    "QUICK_REPLY",
    "URL",
    "PHONE_NUMBER",
    "COPY_CODE",
    "OTP",
    "FLOW",
    "VOICE_CALL",
    "MPM",
    "SPM",
    "CATALOG",
)
BUTTON_LIMIT = 10
BUTTON_TYPE_LIMITS = {"QUICK_REPLY": 10, "URL": 2, "PHONE_NUMBER": 1, "COPY_CODE": 1}
LABELLED_BUTTONS = ("QUICK_REPLY", "URL", "PHONE_NUMBER")
LABEL_LIMIT = 25
URL_LIMIT = 2000
URL_VARIABLE_LIMIT = 1
PHONE_LIMIT = 20
COPY_CODE_LIMIT = 15

CARDS_MIN, CARDS_MAX = 2, 10
CARD_BODY_LIMIT = 160
CARD_BUTTON_LIMIT = 2
CARD_BUTTON_TYPES = ("QUICK_REPLY", "URL", "PHONE_NUMBER")
CARD_HEADER_FORMATS = ("IMAGE", "VIDEO")
CARD_COMPONENT_TYPES = ("HEADER", "BODY", "BUTTONS")

OTP_TYPES = ("COPY_CODE", "ONE_TAP", "ZERO_TAP")
APPS_LIMIT = 5
SIGNATURE_HASH_LENGTH = 11
CODE_EXPIRATION_MINUTES = (1, 90)

_NAME = re.compile(r"[a-z0-9_]+")
# A well-formed placeholder; what is inside is judged separately so a bad one can be named.
_BRACED = re.compile(r"\{\{([^{}]*)\}\}")
_VARIABLE_CHARS = re.compile(r"[A-Za-z0-9_]+")
_NAMED_VARIABLE = re.compile(r"[a-z_]+")
_ADJACENT = re.compile(r"\{\{[^{}]*\}\}\s*\{\{[^{}]*\}\}")
_ENDS_WITH_VARIABLE = re.compile(r"\{\{[^{}]*\}\}$")
_URLISH = re.compile(r"https?://|www\.", re.IGNORECASE)
# A sentinel that cannot occur in template text, put where a placeholder was.
_HOLE = "\x00"


# --- normalizing --------------------------------------------------------------------------------


def normalized(definition: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy with WhatsApp's case-insensitive enum values upper case.

    Component and button types, header formats, ``otp_type``, ``category`` and ``status`` go
    upper case; ``parameter_format`` and our ``type`` lower case. Anything that is not the
    expected shape is left as it is for ``validate_template`` to report.
    """
    data = copy.deepcopy(dict(definition))
    for key in ("category", "status"):
        if isinstance(data.get(key), str):
            data[key] = data[key].strip().upper()
    for key in ("parameter_format", "type"):
        if isinstance(data.get(key), str):
            data[key] = data[key].strip().lower()
    if isinstance(data.get("components"), list):
        _normalize_components(data["components"])
    return data


def _normalize_components(components: list[Any]) -> None:
    for component in components:
        if not isinstance(component, dict):
            continue
        _upper(component, "type")
        _upper(component, "format")
        for button in component.get("buttons") or ():
            if isinstance(button, dict):
                _upper(button, "type")
                _upper(button, "otp_type")
        for card in component.get("cards") or ():
            if isinstance(card, dict) and isinstance(card.get("components"), list):
                _normalize_components(card["components"])


def _upper(data: dict[str, Any], key: str) -> None:
    if isinstance(data.get(key), str):
        data[key] = data[key].strip().upper()


# --- reading a definition -----------------------------------------------------------------------


def _components(definition: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    components = definition.get("components")
    if not isinstance(components, list):
        return []
    return [component for component in components if isinstance(component, Mapping)]


def _first(components: Sequence[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in components if c.get("type") == kind), None)


def _kind(part: Any) -> str | None:
    """The ``type`` of a component or button; None when missing or not text (bad input)."""
    kind = part.get("type") if isinstance(part, Mapping) else None
    return kind if isinstance(kind, str) else None


def template_type(definition: Mapping[str, Any]) -> str:
    """``carousel``, ``limited_time_offer``, ``authentication`` or ``basic``, from the components
    and category of a normalized definition."""
    components = _components(definition)
    if _first(components, "CAROUSEL") is not None:
        return "carousel"
    if _first(components, "LIMITED_TIME_OFFER") is not None:
        return "limited_time_offer"
    if definition.get("category") == "AUTHENTICATION":
        return "authentication"
    return "basic"


# --- collecting violations ----------------------------------------------------------------------


@dataclass
class _Check:
    """What the rules of one template need to know, and the violations found so far."""

    category: str | None
    kind: str
    named: bool
    found: dict[str, list[str]] = field(default_factory=dict)

    def add(self, path: str, reason: str) -> None:
        reasons = self.found.setdefault(path, [])
        if reason not in reasons:
            reasons.append(reason)

    def too_long(self, path: str, text: str, limit: int, what: str = "") -> None:
        if len(text) > limit:
            where = f" {what}" if what else ""
            self.add(path, f"{len(text)} characters, the limit{where} is {limit}")


def validate_template(definition: Mapping[str, Any]) -> dict[str, str]:
    """Every rule the definition breaks, as ``{path: reason}``; empty when it is valid.

    ``definition`` is WhatsApp's template format (``name``, ``language``, ``category``,
    ``parameter_format``, ``components``) plus our optional ``type`` and ``status``; it is
    normalized first, so enum values may come in any case.
    """
    data = normalized(definition)
    category = data.get("category") if data.get("category") in CATEGORIES else None
    check = _Check(
        category=category,
        kind=template_type(data),
        named=data.get("parameter_format") == "named",
    )
    _check_name(check, data.get("name"))
    _check_language(check, data.get("language"))
    _check_category(check, data.get("category"))
    _check_status(check, data.get("status"))
    _check_parameter_format(check, data.get("parameter_format"))
    _check_type(check, data.get("type"))
    _check_components(check, data.get("components"))
    return {path: "; ".join(reasons) for path, reasons in check.found.items()}


# --- name, language, category, status, type -----------------------------------------------------


def _check_name(check: _Check, name: Any) -> None:
    if not isinstance(name, str) or not name:
        check.add("name", "required: lowercase letters, digits and _")
        return
    check.too_long("name", name, NAME_LIMIT)
    if not _NAME.fullmatch(name):
        check.add("name", f"{name!r} has characters other than lowercase letters, digits and _")


def _check_language(check: _Check, language: Any) -> None:
    if not isinstance(language, str) or not language:
        check.add("language", "required: a WhatsApp language code such as en or en_US")
        return
    if language in LANGUAGES:
        return
    # The two mistakes people make: en-US for en_US (webhooks even write it so), and en_us.
    guess = _LANGUAGES_BY_LOWER.get(language.replace("-", "_").lower())
    if guess is not None:
        check.add("language", f"{language!r} is not a WhatsApp language code; use {guess!r}")
    else:
        check.add(
            "language",
            f"{language!r} is not a WhatsApp language code (see whatsapp-rules.md §1.3: "
            "en, en_US, hi, pt_BR...)",
        )


def _check_category(check: _Check, category: Any) -> None:
    if category is None:
        check.add("category", f"required: one of {', '.join(CATEGORIES)}")
    elif category not in CATEGORIES:
        check.add("category", f"unknown category {category!r}; one of {', '.join(CATEGORIES)}")


def _check_status(check: _Check, status: Any) -> None:
    if status is not None and status not in STATUSES:
        check.add("status", f"unknown status {status!r}; WhatsApp's are {', '.join(STATUSES)}")


def _check_parameter_format(check: _Check, value: Any) -> None:
    if value is not None and value not in PARAMETER_FORMATS:
        check.add("parameter_format", f"must be positional or named, got {value!r}")


def _check_type(check: _Check, given: Any) -> None:
    if given is None:
        return
    if given not in TEMPLATE_TYPES:
        check.add("type", f"unknown type {given!r}; one of {', '.join(TEMPLATE_TYPES)}")
        return
    if given == check.kind:
        return
    needs = {
        "carousel": "a CAROUSEL component",
        "limited_time_offer": "a LIMITED_TIME_OFFER component",
        "authentication": "category AUTHENTICATION",
        "basic": "no CAROUSEL or LIMITED_TIME_OFFER component and category MARKETING or UTILITY",
    }[given]
    check.add("type", f"type {given} needs {needs}; the template as given is {check.kind}")


# --- components ---------------------------------------------------------------------------------


def _check_components(check: _Check, components: Any) -> None:
    if not isinstance(components, list) or not components:
        check.add("components", "required: a list of components with exactly one BODY")
        return
    counts: Counter[str] = Counter()
    for index, component in enumerate(components):
        kind = _kind(component)
        if kind not in COMPONENT_TYPES:
            shown = f"unknown component type {kind!r}" if kind else "a component needs a type"
            check.add(f"components.{index}.type", f"{shown}; one of {', '.join(COMPONENT_TYPES)}")
            continue
        counts[kind] += 1
    if counts["BODY"] != 1:
        check.add(
            "components", f"a template has exactly one BODY component, found {counts['BODY']}"
        )
    for kind in COMPONENT_TYPES:
        if kind != "BODY" and counts[kind] > 1:
            check.add("components", f"{counts[kind]} {kind} components, the limit is 1")

    parts = _components({"components": components})
    header, body = _first(parts, "HEADER"), _first(parts, "BODY")
    footer, buttons = _first(parts, "FOOTER"), _first(parts, "BUTTONS")
    offer, carousel = _first(parts, "LIMITED_TIME_OFFER"), _first(parts, "CAROUSEL")
    if header is not None:
        _check_header_category(check, header)
    if check.kind == "authentication":
        _check_authentication(check, header, body, footer, buttons)
        return
    if header is not None:
        _check_header(check, header)
    if body is not None:
        limit = LTO_BODY_LIMIT if offer is not None else BODY_LIMIT
        _check_body(check, "body", body, limit, "in a limited-time offer" if offer else "")
    if footer is not None:
        _check_footer(check, footer, offer is not None)
    if buttons is not None:
        _check_buttons(check, buttons, offer is not None)
    if offer is not None:
        _check_offer(check, offer, buttons)
    if carousel is not None:
        _check_carousel(check, carousel)


def _check_header(check: _Check, header: Mapping[str, Any]) -> None:
    fmt = header.get("format") or ("TEXT" if "text" in header else None)
    if fmt not in HEADER_FORMATS:
        shown = "required" if fmt is None else f"unknown format {fmt!r}"
        check.add("header.format", f"{shown}; one of {', '.join(HEADER_FORMATS)}")
        return
    if check.kind == "limited_time_offer" and fmt not in ("IMAGE", "VIDEO"):
        check.add(
            "header.format", f"a limited-time offer takes an IMAGE or VIDEO header, not {fmt}"
        )
    if fmt == "TEXT":
        _check_header_text(check, header)


def _check_header_category(check: _Check, header: Mapping[str, Any]) -> None:
    fmt = header.get("format")
    if fmt == "LOCATION" and check.category not in ("UTILITY", "MARKETING"):
        check.add("header.format", "LOCATION headers are for UTILITY and MARKETING templates only")
    if fmt == "GIF" and check.category != "MARKETING":
        # GIF headers exist only through the Marketing Messages API.
        check.add("header.format", "GIF headers are for MARKETING templates only")


def _check_header_text(check: _Check, header: Mapping[str, Any]) -> None:
    text = header.get("text")
    if not isinstance(text, str) or not text.strip():
        check.add("header", "required: the text of a TEXT header")
        return
    check.too_long("header", text, HEADER_TEXT_LIMIT)
    names = _check_variables(check, "header", text, dangling=False)
    if len(names) > HEADER_VARIABLE_LIMIT:
        check.add("header", f"{len(names)} variables, the limit is {HEADER_VARIABLE_LIMIT}")
    _check_examples(check, "header", header.get("example"), "header_text", names)


def _check_body(
    check: _Check, path: str, body: Mapping[str, Any], limit: int, what: str = ""
) -> None:
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        check.add(path, "required: the message text")
        return
    check.too_long(path, text, limit, what)
    names = _check_variables(check, path, text, dangling=True)
    _check_examples(check, path, body.get("example"), "body_text", names)


def _check_footer(check: _Check, footer: Mapping[str, Any], offer: bool) -> None:
    if offer:
        check.add("footer", "a limited-time offer has no footer")
        return
    text = footer.get("text")
    if not isinstance(text, str) or not text.strip():
        check.add("footer", "required: the footer text (or leave the FOOTER out)")
        return
    check.too_long("footer", text, FOOTER_LIMIT)
    if _BRACED.search(text) or "{{" in text:
        check.add("footer", "a footer is static text: no variables")


# --- variables and their examples ---------------------------------------------------------------


def _check_variables(check: _Check, path: str, text: str, *, dangling: bool) -> list[str]:
    """Check the placeholders of ``text``; return the valid variable names in order of first
    appearance. ``dangling`` adds the body rule: no variable at the very start or end."""
    names: list[str] = []
    for match in _BRACED.finditer(text):
        inner = match.group(1).strip()
        if not _VARIABLE_CHARS.fullmatch(inner):
            check.add(path, f"{match.group(0)}: a variable holds only letters, digits or _")
        else:
            names.append(inner)
    rest = _BRACED.sub(_HOLE, text)
    if any(piece in rest for piece in ("{{", "}}", "{" + _HOLE, _HOLE + "}")):
        check.add(path, "mismatched braces: write variables as {{1}} or {{name}}")
    if _ADJACENT.search(text):
        check.add(path, "two variables side by side: put text or punctuation between them")
    if dangling and names:
        stripped = text.strip()
        if _BRACED.match(stripped):
            check.add(path, "starts with a variable: put some text before it")
        if _ENDS_WITH_VARIABLE.search(stripped):
            check.add(path, "ends with a variable: put some text or punctuation after it")
    distinct = list(dict.fromkeys(names))
    if check.named:
        _check_named(check, path, names, distinct)
    else:
        _check_positional(check, path, distinct)
    return distinct


def _check_named(check: _Check, path: str, names: list[str], distinct: list[str]) -> None:
    for name in distinct:
        if name.isdigit():
            check.add(
                path,
                f"{{{{{name}}}}} is positional, but parameter_format is named: use names such "
                "as {{first_name}}",
            )
        elif not _NAMED_VARIABLE.fullmatch(name):
            check.add(path, f"{{{{{name}}}}}: a named variable is lowercase letters and _ only")
    for name, count in Counter(names).items():
        if count > 1:
            check.add(path, f"{{{{{name}}}}} is used {count} times; named variables are unique")


def _check_positional(check: _Check, path: str, distinct: list[str]) -> None:
    for name in distinct:
        if not name.isdigit():
            check.add(
                path,
                f"{{{{{name}}}}} is a named variable: set parameter_format to named, or use "
                "{{1}}, {{2}}...",
            )
    numbers = [int(name) for name in distinct if name.isdigit()]
    expected = list(range(1, len(numbers) + 1))
    shown = ", ".join(f"{{{{{n}}}}}" for n in numbers)
    if sorted(numbers) != expected:
        check.add(path, f"variables are numbered from {{{{1}}}} without gaps, found {shown}")
    elif numbers != expected:
        check.add(path, f"variables appear in order {{{{1}}}}, {{{{2}}}}..., found {shown}")


def _check_examples(check: _Check, path: str, example: Any, key: str, names: list[str]) -> None:
    """Every variable needs a sample value: ``example.<key>`` (positional, in order) or
    ``example.<key>_named_params`` (named)."""
    if not names:
        return
    example = example if isinstance(example, Mapping) else {}
    where = f"{path}.example"
    if check.named:
        _check_named_examples(check, where, example.get(f"{key}_named_params"), key, names)
        return
    values = example.get(key)
    if isinstance(values, list) and values and isinstance(values[0], list):
        values = values[0]  # body_text is [[...]]: one list of values per example set
    if not isinstance(values, list) or not values:
        check.add(where, f"required: {key}, one sample value per variable ({len(names)})")
        return
    if len(values) != len(names):
        check.add(where, f"{key} has {len(values)} values for {len(names)} variables")
    for number, value in enumerate(values, start=1):
        if not isinstance(value, str | int | float) or not str(value).strip():
            check.add(where, f"{key} value {number} is empty")


def _check_named_examples(
    check: _Check, where: str, params: Any, key: str, names: list[str]
) -> None:
    field_name = f"{key}_named_params"
    if not isinstance(params, list) or not params:
        wanted = ", ".join(f"{{{{{name}}}}}" for name in names)
        check.add(where, f"required: {field_name} with a sample value for each of {wanted}")
        return
    given: list[str] = []
    for param in params:
        if not isinstance(param, Mapping) or not isinstance(param.get("param_name"), str):
            check.add(where, f"{field_name} entries are {{param_name, example}}")
            continue
        given.append(param["param_name"])
        value = param.get("example")
        if not isinstance(value, str | int | float) or not str(value).strip():
            check.add(where, f"{field_name}: the example of {param['param_name']} is empty")
    for name in names:
        if name not in given:
            check.add(where, f"{field_name} has no sample value for {{{{{name}}}}}")
    for name, count in Counter(given).items():
        if name not in names:
            check.add(where, f"{field_name} names {name}, which the text does not use")
        elif count > 1:
            check.add(where, f"{field_name} names {name} {count} times")


# --- buttons ------------------------------------------------------------------------------------


def _button_list(check: _Check, path: str, component: Mapping[str, Any]) -> list[Any]:
    buttons = component.get("buttons")
    if not isinstance(buttons, list) or not buttons:
        check.add(path, "required: at least one button (or leave the BUTTONS out)")
        return []
    return buttons


def _check_buttons(check: _Check, component: Mapping[str, Any], offer: bool) -> None:
    buttons = _button_list(check, "buttons", component)
    if not buttons:
        return
    if len(buttons) > BUTTON_LIMIT:
        check.add("buttons", f"{len(buttons)} buttons, the limit is {BUTTON_LIMIT}")
    kinds = [_kind(button) for button in buttons]
    for kind, count in Counter(kinds).items():
        limit = BUTTON_TYPE_LIMITS.get(str(kind))
        if limit is not None and count > limit:
            check.add("buttons", f"{count} {kind} buttons, the limit is {limit}")
    _check_grouping(check, [str(kind) for kind in kinds])
    if offer:
        _check_offer_buttons(check, kinds)
    for index, button in enumerate(buttons):
        _check_button(check, f"buttons.{index}", button, BUTTON_TYPES)


def _check_grouping(check: _Check, kinds: list[str]) -> None:
    # Quick replies and the other buttons each form one contiguous run, in either order.
    runs = [kind == "QUICK_REPLY" for kind in kinds]
    changes = sum(1 for a, b in pairwise(runs) if a != b)
    if changes > 1:
        check.add(
            "buttons",
            "quick replies must be grouped together, before or after the other buttons; "
            f"found {', '.join(kinds)}",
        )


def _check_button(check: _Check, path: str, button: Any, allowed: Sequence[str]) -> None:
    if not isinstance(button, Mapping):
        check.add(path, "a button is an object with a type")
        return
    kind = _kind(button)
    if kind not in allowed:
        shown = f"unknown button type {kind!r}" if kind not in BUTTON_TYPES else f"{kind} buttons"
        check.add(f"{path}.type", f"{shown}: allowed here are {', '.join(allowed)}")
        return
    if kind in LABELLED_BUTTONS:
        _check_label(check, f"{path}.text", button.get("text"))
    if kind == "URL":
        _check_url_button(check, path, button)
    elif kind == "PHONE_NUMBER":
        phone = button.get("phone_number")
        if not isinstance(phone, str) or not phone.strip():
            check.add(f"{path}.phone_number", "required: the number to call")
        else:
            check.too_long(f"{path}.phone_number", phone, PHONE_LIMIT)
    elif kind == "COPY_CODE":
        code = _single_example(button.get("example"))
        if code is None:
            check.add(f"{path}.example", "required: a sample code to copy")
        else:
            check.too_long(f"{path}.example", code, COPY_CODE_LIMIT)
    elif kind == "OTP" and check.kind != "authentication":
        check.add(f"{path}.type", "OTP buttons are for AUTHENTICATION templates only")


def _check_label(check: _Check, path: str, label: Any) -> None:
    if not isinstance(label, str) or not label.strip():
        check.add(path, "required: the button label")
    else:
        check.too_long(path, label, LABEL_LIMIT)


def _check_url_button(check: _Check, path: str, button: Mapping[str, Any]) -> None:
    url = button.get("url")
    where = f"{path}.url"
    if not isinstance(url, str) or not url.strip():
        check.add(where, "required: the URL the button opens")
        return
    check.too_long(where, url, URL_LIMIT)
    variables = _BRACED.findall(url)
    rest = _BRACED.sub(_HOLE, url)
    if any(piece in rest for piece in ("{{", "}}", "{" + _HOLE, _HOLE + "}")):
        check.add(where, "mismatched braces: write the variable as {{1}}")
    if len(variables) > URL_VARIABLE_LIMIT:
        check.add(where, f"{len(variables)} variables, the limit is {URL_VARIABLE_LIMIT}")
    if variables and not _ENDS_WITH_VARIABLE.search(url.strip()):
        check.add(where, "the variable must be at the end of the URL (https://x.com/track/{{1}})")
    if variables and _single_example(button.get("example")) is None:
        check.add(f"{path}.example", "required: a sample URL or suffix for the URL variable")


def _single_example(example: Any) -> str | None:
    """A button's example: a string, or a list holding one string (WhatsApp writes both)."""
    if isinstance(example, list) and example:
        example = example[0]
    if isinstance(example, str | int) and str(example).strip():
        return str(example)
    return None


# --- limited-time offer -------------------------------------------------------------------------


def _check_offer(
    check: _Check, offer: Mapping[str, Any], buttons: Mapping[str, Any] | None
) -> None:
    if check.category != "MARKETING":
        check.add("limited_time_offer", "a limited-time offer is for MARKETING templates only")
    inner = offer.get("limited_time_offer")
    inner = inner if isinstance(inner, Mapping) else offer
    text = inner.get("text")
    if not isinstance(text, str) or not text.strip():
        check.add("limited_time_offer.text", "required: the offer title")
    else:
        check.too_long("limited_time_offer.text", text, LTO_TEXT_LIMIT)
    expiry = inner.get("has_expiration")
    if expiry is not None and not isinstance(expiry, bool):
        check.add("limited_time_offer.has_expiration", "must be true or false")
    if buttons is None:
        check.add("buttons", "a limited-time offer needs a URL button (and may have a copy code)")


def _check_offer_buttons(check: _Check, kinds: list[Any]) -> None:
    others = [str(kind) for kind in kinds if kind not in ("COPY_CODE", "URL")]
    if others:
        check.add(
            "buttons",
            f"a limited-time offer has a copy-code and a URL button only, not {', '.join(others)}",
        )
    if "URL" not in kinds:
        check.add("buttons", "a limited-time offer needs a URL button (and may have a copy code)")


# --- carousel -----------------------------------------------------------------------------------


def _check_carousel(check: _Check, carousel: Mapping[str, Any]) -> None:
    if check.category != "MARKETING":
        check.add("carousel", "a carousel is for MARKETING templates only")
    cards = carousel.get("cards")
    if not isinstance(cards, list):
        check.add("carousel.cards", f"required: {CARDS_MIN} to {CARDS_MAX} cards")
        return
    if not CARDS_MIN <= len(cards) <= CARDS_MAX:
        check.add(
            "carousel.cards", f"{len(cards)} cards, a carousel has {CARDS_MIN} to {CARDS_MAX}"
        )
    shapes: list[tuple[str | None, bool, tuple[str, ...]] | None] = [
        _check_card(check, f"carousel.cards.{index}", card) for index, card in enumerate(cards)
    ]
    known = [shape for shape in shapes if shape is not None]
    formats = {fmt for fmt, _body, _buttons in known if fmt is not None}
    if len(formats) > 1:
        check.add(
            "carousel.cards",
            f"every card has the same header format, found {', '.join(sorted(formats))}",
        )
    with_body = sum(1 for _fmt, body, _buttons in known if body)
    if 0 < with_body < len(known):
        check.add(
            "carousel.cards",
            f"{with_body} of {len(known)} cards have a body: every card has one, or none does",
        )
    for index, shape in enumerate(shapes):
        if shape is not None and known and shape[2] != known[0][2]:
            check.add(
                f"carousel.cards.{index}",
                f"buttons ({', '.join(shape[2]) or 'none'}) differ from the first card's "
                f"({', '.join(known[0][2]) or 'none'}); every card has the same structure",
            )


def _check_card(
    check: _Check, path: str, card: Any
) -> tuple[str | None, bool, tuple[str, ...]] | None:
    """Check one card; return its shape (header format, has body, button types) to compare."""
    components = card.get("components") if isinstance(card, Mapping) else None
    if not isinstance(components, list):
        check.add(path, "a card is {components: [HEADER, BODY?, BUTTONS?]}")
        return None
    parts = _components({"components": components})
    for index, part in enumerate(components):
        kind = _kind(part)
        if kind not in CARD_COMPONENT_TYPES:
            check.add(
                f"{path}.components.{index}.type",
                f"a card holds {', '.join(CARD_COMPONENT_TYPES)} only, not {kind!r}",
            )
    header, body, buttons = (_first(parts, kind) for kind in CARD_COMPONENT_TYPES)
    fmt = header.get("format") if header is not None else None
    if fmt not in CARD_HEADER_FORMATS:
        shown = "required" if header is None else f"format {fmt!r} is not allowed"
        check.add(f"{path}.header", f"{shown}: a card's header is IMAGE or VIDEO")
    if body is not None:
        _check_body(check, f"{path}.body", body, CARD_BODY_LIMIT)
    kinds: tuple[str, ...] = ()
    if buttons is not None:
        kinds = _check_card_buttons(check, f"{path}.buttons", buttons)
    return (fmt if isinstance(fmt, str) else None, body is not None, kinds)


def _check_card_buttons(check: _Check, path: str, component: Mapping[str, Any]) -> tuple[str, ...]:
    buttons = _button_list(check, path, component)
    if len(buttons) > CARD_BUTTON_LIMIT:
        check.add(path, f"{len(buttons)} buttons, the limit on a card is {CARD_BUTTON_LIMIT}")
    for index, button in enumerate(buttons):
        _check_button(check, f"{path}.{index}", button, CARD_BUTTON_TYPES)
    return tuple(str(_kind(button)) for button in buttons)


# --- authentication -----------------------------------------------------------------------------


def _check_authentication(
    check: _Check,
    header: Mapping[str, Any] | None,
    body: Mapping[str, Any] | None,
    footer: Mapping[str, Any] | None,
    buttons: Mapping[str, Any] | None,
) -> None:
    """One-time-password templates: WhatsApp writes the text; we only choose its options."""
    if header is not None:
        check.add("header", "authentication templates have no header: no media, no free text")
    if body is not None:
        _check_auth_body(check, body)
    if footer is not None:
        _check_auth_footer(check, footer)
    if buttons is None:
        check.add("buttons", "required: one OTP button (otp_type COPY_CODE, ONE_TAP or ZERO_TAP)")
    else:
        _check_auth_buttons(check, buttons)


def _check_auth_body(check: _Check, body: Mapping[str, Any]) -> None:
    flag = body.get("add_security_recommendation")
    if flag is not None and not isinstance(flag, bool):
        check.add("body.add_security_recommendation", "must be true or false")
    text = body.get("text")
    if text is None:
        return
    # Providers hand back WhatsApp's preset ("*{{1}}* is your verification code."), localized,
    # so the text cannot be compared word for word; free text shows as other variables or URLs.
    names = [match.strip() for match in _BRACED.findall(text)] if isinstance(text, str) else []
    if not isinstance(text, str) or names != ["1"] or _URLISH.search(text):
        check.add(
            "body",
            "authentication templates use WhatsApp's preset text ('{{1}} is your verification "
            "code.'); free text, URLs and other variables are not allowed",
        )


def _check_auth_footer(check: _Check, footer: Mapping[str, Any]) -> None:
    minutes = footer.get("code_expiration_minutes")
    low, high = CODE_EXPIRATION_MINUTES
    if minutes is None:
        check.add(
            "footer",
            f"an authentication footer holds only code_expiration_minutes ({low} to {high}); "
            "free text is not allowed",
        )
    elif isinstance(minutes, bool) or not isinstance(minutes, int) or not low <= minutes <= high:
        check.add(
            "footer.code_expiration_minutes", f"must be {low} to {high} minutes, got {minutes!r}"
        )


def _check_auth_buttons(check: _Check, component: Mapping[str, Any]) -> None:
    buttons = _button_list(check, "buttons", component)
    if not buttons:
        return
    kinds = [_kind(button) for button in buttons]
    if kinds != ["OTP"]:
        check.add(
            "buttons",
            "authentication templates have exactly one OTP button: no URLs, no other buttons "
            f"(found {', '.join(str(kind) for kind in kinds)})",
        )
    for index, button in enumerate(buttons):
        if isinstance(button, Mapping) and button.get("type") == "OTP":
            _check_otp_button(check, f"buttons.{index}", button)


def _check_otp_button(check: _Check, path: str, button: Mapping[str, Any]) -> None:
    otp_type = button.get("otp_type")
    if otp_type not in OTP_TYPES:
        shown = "required" if otp_type is None else f"unknown otp_type {otp_type!r}"
        check.add(f"{path}.otp_type", f"{shown}; one of {', '.join(OTP_TYPES)}")
        return
    if otp_type == "COPY_CODE":
        return
    apps = button.get("supported_apps")
    if apps is None and "package_name" in button:
        # The older one-tap shape put a single app on the button itself.
        apps = [{key: button.get(key) for key in ("package_name", "signature_hash")}]
    where = f"{path}.supported_apps"
    if not isinstance(apps, list) or not apps:
        check.add(
            where,
            f"required for {otp_type}: the Android apps (package_name, "
            "signature_hash) that receive the code",
        )
        return
    if len(apps) > APPS_LIMIT:
        check.add(where, f"{len(apps)} apps, the limit is {APPS_LIMIT}")
    for index, app in enumerate(apps):
        app = app if isinstance(app, Mapping) else {}
        package = app.get("package_name")
        if not isinstance(package, str) or not package.strip():
            check.add(f"{where}.{index}.package_name", "required: the Android package name")
        signature = app.get("signature_hash")
        if not isinstance(signature, str) or len(signature) != SIGNATURE_HASH_LENGTH:
            got = len(signature) if isinstance(signature, str) else "no"
            check.add(
                f"{where}.{index}.signature_hash",
                f"{got} characters, an app signature hash has {SIGNATURE_HASH_LENGTH}",
            )
