"""Personalizer.components fills from a plan made once per template; the reference
build_components (reference_components.py) walks the definition each call. They must agree
to the byte (same components, order and dict key order) for every shape of template, with
every value in its own place: each slot here gets a value no other slot has, so a value put
in the wrong place shows as a difference."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.templates.builders import (
    auth_template,
    body,
    buttons,
    card,
    carousel_template,
    copy_code,
    header,
    header_text,
    offer,
    offer_template,
    otp,
    phone_button,
    quick_reply,
    template,
    url_button,
)
from tests.templates.reference_components import build_components
from waconnect.templates.personalization import (
    Personalizer,
    compile_mapping,
    template_slots,
)
from waconnect.templates.validation import normalized, validate_template


def valid(definition: dict[str, Any]) -> dict[str, Any]:
    assert validate_template(definition) == {}, validate_template(definition)
    return normalized(definition)


def named_body(text: str, **examples: str) -> dict[str, Any]:
    params = [{"param_name": name, "example": value} for name, value in examples.items()]
    return {"type": "BODY", "text": text, "example": {"body_text_named_params": params}}


DEFINITIONS: dict[str, dict[str, Any]] = {
    "text header, numbered body, url, copy code, quick replies": valid(
        template(
            header_text("Order {{1}}", "A-1"),
            body("Hi {{1}}, your total is {{2}}.", "Asha", "100"),
            buttons(
                url_button("https://shop.example.org/o/{{1}}"),
                copy_code(),
                quick_reply("Yes"),
                quick_reply("No"),
            ),
            category="MARKETING",
        )
    ),
    "named header and body": valid(
        template(
            {
                "type": "HEADER",
                "format": "TEXT",
                "text": "For {{who}}",
                "example": {"header_text_named_params": [{"param_name": "who", "example": "A"}]},
            },
            named_body(
                "Hi {{first_name}}, order {{order_id}} ships.", first_name="A", order_id="B"
            ),
            parameter_format="named",
        )
    ),
    "image header, static url, phone": valid(
        template(
            header("IMAGE"),
            body("Look at this."),
            buttons(url_button("https://shop.example.org/", None), phone_button()),
        )
    ),
    "document header": valid(template(header("DOCUMENT"), body("Your invoice {{1}}.", "1"))),
    "video header": valid(template(header("VIDEO"), body("Watch."))),
    "location header": valid(template(header("LOCATION"), body("Find us, {{1}}.", "A"))),
    "limited-time offer": valid(offer_template()),
    "limited-time offer without expiration": valid(
        offer_template(offer(has_expiration=False), category="MARKETING")
    ),
    "carousel": valid(
        carousel_template(
            [
                card(text=f"Card {k} is {{{{1}}}}.", card_buttons=[quick_reply(), url_button()])
                for k in range(3)
            ]
        )
    ),
    "authentication": valid(auth_template()),
    # Raw shapes validation would refuse or normalize: variables out of order, lower-case
    # types, a header with two variables (only the first is sent), a card that is not an
    # object, several OTP buttons.
    "body variables out of order and repeated": template(
        body("Hi {{2}} then {{1}}, again {{2}}.", "a", "b")
    ),
    "lower-case, unnormalized": template(
        {"type": "header", "format": "text", "text": "{{1}} and {{2}}"},
        {"type": "body", "text": "Hi {{1}}."},
        {"type": "buttons", "buttons": [quick_reply(), "junk", copy_code()]},
    ),
    "carousel with an empty card": {
        "category": "MARKETING",
        "components": [
            {
                "type": "CAROUSEL",
                "cards": [
                    None,
                    card(fmt="VIDEO", text="More {{1}} and {{2}}."),
                    {"components": None},
                    card(fmt="DOCUMENT", text="Plain.", card_buttons=[copy_code()]),
                ],
            }
        ],
    },
    "authentication with several OTP buttons": auth_template(
        buttons(otp(), quick_reply(), otp("ONE_TAP"))
    ),
}


def own_value(key: str, kind: str) -> Any:
    """A value for slot ``key`` that no other slot gets: it carries ``[key]`` (brackets, so
    ``body.1`` is not found inside ``cards.0.body.1``; a URL suffix keeps them as they are)."""
    if kind == "media":
        return {"link": f"https://x.org/[{key}].pdf", "filename": f"[{key}].pdf"}
    if kind == "location":
        return {"latitude": len(key), "longitude": -len(key), "name": f"[{key}]"}
    if kind == "expiration":
        return 1_893_456_000_000 + len(key)
    return f"[{key}] & more/?x=1"  # characters a URL suffix must encode, and some it keeps


def compiled(definition: dict[str, Any]) -> tuple[Personalizer, dict[str, Any]]:
    """Every slot read from an attribute named after its key, with that slot's own value."""
    slots = template_slots(definition)
    mapping = {slot.key: {"attribute": slot.key} for slot in slots}
    attributes = {slot.key: own_value(slot.key, slot.kind) for slot in slots}
    return compile_mapping(definition, mapping), attributes


def wire(components: list[dict[str, Any]]) -> str:
    return json.dumps(components)  # key order included: this is what is sent


@pytest.mark.parametrize("name", list(DEFINITIONS))
def test_the_plan_fills_as_build_components_does(name: str) -> None:
    personalizer, attributes = compiled(DEFINITIONS[name])
    without_optional = {
        key: value
        for key, value in attributes.items()
        if not personalizer.slots[key].optional  # quick-reply payloads
    }
    for person in (attributes, without_optional):
        reference = build_components(personalizer.definition, personalizer.values(person))
        assert wire(personalizer.components(person)) == wire(reference)


def test_every_slot_shows_up_in_the_components() -> None:
    """The comparison above means something only if the values reach the output at all."""
    for name, definition in DEFINITIONS.items():
        personalizer, attributes = compiled(definition)
        sent = wire(personalizer.components(attributes))
        for key, slot in personalizer.slots.items():
            if slot.kind == "text" and key.startswith("header.") and key != "header.1":
                continue  # a text header sends its first variable only
            mark = str(own_value(key, slot.kind)) if slot.kind == "expiration" else f"[{key}]"
            assert mark in sent, (name, key)


def test_each_recipient_gets_its_own_values_and_objects() -> None:
    definition = DEFINITIONS["carousel"]
    personalizer, first = compiled(definition)
    second = {
        key: (f"2nd {value}" if isinstance(value, str) else value) for key, value in first.items()
    }
    one = personalizer.components(first)
    one[-1]["cards"][0]["components"][0]["parameters"][0]["image"]["link"] = "changed"
    one[0]["parameters"][0]["text"] = "changed"
    two = personalizer.components(second)
    assert wire(two) == wire(build_components(definition, personalizer.values(second)))
    assert two[0]["parameters"][0]["text"] == "2nd [body.1] & more/?x=1"
    again = personalizer.components(first)
    assert wire(again) == wire(build_components(definition, personalizer.values(first)))


def test_a_full_template_by_hand() -> None:
    """The reference itself, written out, so both paths cannot drift together."""
    definition = DEFINITIONS["text header, numbered body, url, copy code, quick replies"]
    personalizer = compile_mapping(
        definition,
        {
            "header.1": {"attribute": "order"},
            "body.1": {"attribute": "first_name"},
            "body.2": {"literal": "A-1"},
            "buttons.0.1": {"attribute": "order"},
            "buttons.1.1": {"literal": "SAVE20"},
            "buttons.3.payload": {"literal": "no"},
        },
    )
    button = {"type": "button", "index": "0", "sub_type": "url"}
    assert wire(personalizer.components({"first_name": "Asha", "order": "7 b"})) == wire(
        [
            {"type": "header", "parameters": [{"type": "text", "text": "7 b"}]},
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Asha"}, {"type": "text", "text": "A-1"}],
            },
            {**button, "parameters": [{"type": "text", "text": "7%20b"}]},
            {
                "type": "button",
                "index": "1",
                "sub_type": "copy_code",
                "parameters": [{"type": "coupon_code", "coupon_code": "SAVE20"}],
            },
            {
                "type": "button",
                "index": "3",
                "sub_type": "quick_reply",
                "parameters": [{"type": "payload", "payload": "no"}],
            },
        ]
    )
