"""``waconnect templates test``: the test send from a terminal, printed for a person.

It writes to the database like the API does; the worker (``waconnect serve`` or
``waconnect worker``) sends, and this command waits for the provider's answers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from waconnect.runtime import Runtime
from waconnect.templates.personalization import SOURCES
from waconnect.templates.schemas import TestSendIn, TestSendOut
from waconnect.templates.sending import send_test
from waconnect.workspaces.service import workspace_by_name

MAP_HELP = (
    "KEY=SOURCE:VALUE, SOURCE one of literal, attribute (e.g. body.1=attribute:first_name, "
    'header.media=literal:https://x/y.jpg, header.location=literal:{"latitude":1,"longitude":2})'
)


def parse_mapping(items: Sequence[str], defaults: Sequence[str] = ()) -> dict[str, Any]:
    """``--map`` and ``--default`` options as a mapping; ValueError names a bad item."""
    mapping: dict[str, Any] = {}
    for item in items:
        key, sep, spec = item.partition("=")
        source, colon, value = spec.partition(":")
        if not sep or not key.strip() or not colon or source not in SOURCES:
            raise ValueError(f"--map {item!r}: write {MAP_HELP}")
        mapping[key.strip()] = {source: _value(value) if source == "literal" else value}
    for item in defaults:
        key, sep, value = item.partition("=")
        if not sep or key.strip() not in mapping:
            raise ValueError(f"--default {item!r}: write KEY=VALUE for a KEY given with --map")
        mapping[key.strip()]["default"] = value
    return mapping


def _value(text: str) -> Any:
    """A literal: JSON objects (a location, {link, filename}) are read as JSON, else text."""
    if text.strip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"literal {text!r} is not valid JSON: {exc}") from None
    return text


async def test_from_terminal(
    runtime: Runtime,
    workspace: str,
    template_id: int,
    to: Sequence[str],
    profile_ids: Sequence[int],
    mapping: dict[str, Any],
    wait_seconds: float,
) -> TestSendOut:
    async with runtime.sessions() as session:
        workspace_id = (await workspace_by_name(session, workspace)).id
    body = TestSendIn(
        to=list(to), profile_ids=list(profile_ids), mapping=mapping, wait_seconds=wait_seconds
    )
    return await send_test(runtime, workspace_id, template_id, body)


def describe(result: TestSendOut) -> str:
    """The result for a person: one line per recipient, then its request and the answer."""
    lines = [
        f"template {result.template_id} through provider config {result.provider_id} "
        f"({result.provider_kind})"
    ]
    for item in result.results:
        head = f"{item.to}  {item.outcome}"
        if item.message_id is not None:
            head += f"  message {item.message_id}"
        if item.http_status is not None:
            head += f"  HTTP {item.http_status}"
        if item.reason:
            head += f"  {item.reason}"
        lines.append(head)
        if item.request:
            request = item.request
            lines.append(f"  request: {request.get('method')} {request.get('url')}")
            for name, value in (request.get("headers") or {}).items():
                lines.append(f"    {name}: {value}")
            lines.append("    " + json.dumps(request.get("body"), ensure_ascii=False))
        if item.response is not None:
            lines.append(f"  response: {item.response}")
        if item.outcome == "waiting":
            lines.append(
                "  no answer yet: is the worker running (waconnect serve)? "
                f"see GET /api/v1/messages/{item.message_id}"
            )
    return "\n".join(lines)
