"""Personalization benchmark: recipients filled per second by one compiled mapping.

Campaigns call ``Personalizer.components`` once per recipient in their loop, and the
dispatcher renders each template into its wire format; this measures both on one core, in
process, for a basic template (text header, two body variables, dynamic URL, copy code) and
a two-card carousel. Ends with one JSON line of its figures.

    .venv/bin/python bench/personalization.py [--recipients 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from typing import Any

from waconnect.providers.adapters import ProviderEndpoint, TemplateSend, get_adapter
from waconnect.templates.personalization import compile_mapping
from waconnect.templates.validation import normalized

BASIC: dict[str, Any] = normalized(
    {
        "name": "order_update",
        "language": "en",
        "category": "MARKETING",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
            {"type": "BODY", "text": "Hi {{1}}, your total is {{2}}."},
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "URL", "text": "Track", "url": "https://x.org/o/{{1}}"},
                    {"type": "COPY_CODE", "example": "SAVE20"},
                ],
            },
        ],
    }
)
BASIC_MAPPING = {
    "header.1": {"attribute": "order"},
    "body.1": {"attribute": "first_name", "default": "there"},
    "body.2": {"attribute": "total"},
    "buttons.0.1": {"attribute": "order"},
    "buttons.1.1": {"literal": "SAVE20"},
}


def card(k: int) -> dict[str, Any]:
    return {
        "components": [
            {"type": "HEADER", "format": "IMAGE"},
            {"type": "BODY", "text": f"Card {k} for {{{{1}}}}."},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "More"}]},
        ]
    }


CAROUSEL: dict[str, Any] = normalized(
    {
        "name": "summer",
        "language": "en",
        "category": "MARKETING",
        "components": [
            {"type": "BODY", "text": "Summer is here, {{1}}!"},
            {"type": "CAROUSEL", "cards": [card(0), card(1)]},
        ],
    }
)
CAROUSEL_MAPPING = {
    "body.1": {"attribute": "first_name"},
    **{f"cards.{k}.header.media": {"literal": f"https://x.org/{k}.jpg"} for k in range(2)},
    **{f"cards.{k}.body.1": {"attribute": "first_name"} for k in range(2)},
}


def measure(definition: dict[str, Any], mapping: dict[str, Any], count: int) -> dict[str, float]:
    personalizer = compile_mapping(definition, mapping)
    people = [{"first_name": f"Name{n}", "order": n, "total": n * 1.5} for n in range(count)]
    started = time.perf_counter()
    filled = [personalizer.components(person) for person in people]
    fill_rate = count / (time.perf_counter() - started)
    rates = {"fill_per_s": round(fill_rate)}
    for kind in ("generic", "msg91"):
        adapter = get_adapter(kind)
        endpoint = ProviderEndpoint(kind, "https://x.org/send", "918000000001")
        started = time.perf_counter()
        for n, components in enumerate(filled):
            item = TemplateSend(f"{n}-1", "919800000000", definition, components)
            adapter.build_request(endpoint, [item])
        rates[f"{kind}_requests_per_s"] = round(count / (time.perf_counter() - started))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    args = parser.parse_args()
    figures: dict[str, Any] = {"machine": f"{platform.machine()} cpus={os.cpu_count()}"}
    for name, definition, mapping in (
        ("basic", BASIC, BASIC_MAPPING),
        ("carousel", CAROUSEL, CAROUSEL_MAPPING),
    ):
        for key, value in measure(definition, mapping, args.recipients).items():
            figures[f"{name}_{key}"] = value
            print(f"{name:9} {key:24} {value:>10,}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
