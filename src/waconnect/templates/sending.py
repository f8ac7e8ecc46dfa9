"""Test sends: a template to up to 10 phones or profiles, at the outbox's top priority, with
the provider's answers shown — the exact request (secrets masked), HTTP status and body.

Like every send, a test send inserts message rows; the dispatcher sends them. The call then
waits (up to 5 s, without blocking the event loop) for each message's first attempt to be
answered, polling the database, so it works whether the worker runs in this process or in
another one (``waconnect templates test`` from a terminal, with ``waconnect serve`` running).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from waconnect.db.base import is_storable_id
from waconnect.messaging.models import Attempt, Message
from waconnect.messaging.service import (
    PRIORITY_TEST,
    NewMessage,
    enqueue,
    template_definition,
    wake_dispatcher,
)
from waconnect.messaging.session import check_carried
from waconnect.messaging.states import Status
from waconnect.phones import InvalidPhone, normalize_phone
from waconnect.profiles.models import Profile
from waconnect.providers.adapters import TemplateSend
from waconnect.providers.models import ProviderConfig
from waconnect.providers.service import get_provider
from waconnect.runtime import Runtime
from waconnect.templates.models import Template
from waconnect.templates.personalization import (
    MappingError,
    MissingVariable,
    Personalizer,
    compile_mapping,
    example_mapping,
    mapping_error_response,
)
from waconnect.templates.schemas import (
    TemplatePreviewIn,
    TemplatePreviewOut,
    TestRecipientOut,
    TestSendIn,
    TestSendOut,
)
from waconnect.templates.service import get_template
from waconnect.templates.validation import template_type
from waconnect.web.errors import ApiError
from waconnect.workspaces.service import get_workspace, settings_of

MAX_WAIT_SECONDS = 5.0
_FIRST_POLL, _LONGEST_POLL = 0.02, 0.25


@dataclass
class _Recipient:
    phone: str
    profile_id: int | None
    attributes: Mapping[str, Any]


def not_approved(template: Template) -> ApiError:
    return ApiError(
        409,
        "template_not_approved",
        f"template {template.name!r} ({template.language}) is {template.status}; only "
        "APPROVED templates can be sent",
        extra={"template_status": template.status, "template_id": template.id},
    )


async def send_test(
    runtime: Runtime,
    workspace_id: int,
    template_id: int,
    body: TestSendIn,
    provider_id: int | None = None,
) -> TestSendOut:
    """Queue the test messages, wait for the provider's answers, and report each recipient.

    ``provider_id``, when given, is the provider config the template was picked from; a
    template of another config is a 404 there.
    """
    async with runtime.sessions() as session:
        template = await get_template(session, workspace_id, template_id)
        if provider_id is not None and template.provider_id != provider_id:
            await get_provider(session, workspace_id, provider_id)  # 404 for a foreign config
            raise ApiError(
                404,
                "not_found",
                f"template {template_id} is not on provider config {provider_id}",
            )
        if template.status != "APPROVED":
            raise not_approved(template)
        provider = await get_provider(session, workspace_id, template.provider_id)
        definition = template_definition(template)
        personalizer = _personalizer(definition, body)
        recipients = await _recipients(session, workspace_id, body)
        results, rows = _prepare(provider, template, definition, personalizer, recipients, body)
        ids = await enqueue(session, runtime, workspace_id, rows)
        await session.commit()
    wake_dispatcher(runtime)
    queued = iter(ids)
    for result in results:
        if result.outcome == "queued":
            result.message_id = next(queued)
    waiting = min(max(body.wait_seconds, 0.0), MAX_WAIT_SECONDS)
    await _wait_for_answers(runtime, ids, waiting)
    await _fill_answers(runtime, results)
    complete = all(result.outcome not in ("queued", "waiting") for result in results)
    return TestSendOut(
        template_id=template.id,
        provider_id=provider.id,
        provider_kind=provider.kind,
        complete=complete,
        message_ids=ids,
        results=results,
    )


def _personalizer(
    definition: dict[str, Any], body: TestSendIn | TemplatePreviewIn, events: bool = False
) -> Personalizer:
    mapping: dict[str, Any] = dict(body.mapping or {})
    if body.fill_examples:
        # A test send is often "show me this template": sample values fill what is not mapped.
        mapping = {**example_mapping(definition), **mapping}
    try:
        return compile_mapping(definition, mapping, events_allowed=events)
    except MappingError as exc:
        raise mapping_error_response(exc) from None


async def preview(
    runtime: Runtime, workspace_id: int, template_id: int, body: TemplatePreviewIn
) -> TemplatePreviewOut:
    """The template filled for one (sample) recipient: plain text, WhatsApp components and
    the request its provider kind would get. Sends nothing; any status may be previewed."""
    async with runtime.sessions() as session:
        template = await get_template(session, workspace_id, template_id)
        provider = await get_provider(session, workspace_id, template.provider_id)
        attributes = dict(body.attributes)
        if body.profile_id is not None:
            profile = (
                await session.get(Profile, body.profile_id)
                if is_storable_id(body.profile_id)
                else None
            )
            if profile is None or profile.workspace_id != workspace_id or profile.erased_at:
                raise ApiError(404, "not_found", f"profile {body.profile_id} not found")
            attributes = {**dict(profile.attributes or {}), **attributes}
    definition = template_definition(template)
    personalizer = _personalizer(definition, body, events=body.event_properties is not None)
    try:
        components = personalizer.components(attributes, body.event_properties)
    except MissingVariable as exc:
        raise ApiError(
            422,
            "missing_variable",
            f"{exc.key} has no value for this recipient and the mapping gives no default",
            extra={"key": exc.key, "reason": exc.reason},
        ) from None
    item = TemplateSend("preview-1", body.to.lstrip("+"), definition, components)
    request = check_carried(
        provider, item, f"template {template.name!r} ({template_type(definition)})"
    ).masked()
    return TemplatePreviewOut(
        template_id=template.id,
        provider_id=provider.id,
        provider_kind=provider.kind,
        preview=personalizer.preview(attributes, body.event_properties),
        components=components,
        request={"method": request["method"], "url": request["url"], "body": request["body"]},
    )


async def _recipients(
    session: AsyncSession, workspace_id: int, body: TestSendIn
) -> list[_Recipient]:
    settings = settings_of(await get_workspace(session, workspace_id))
    problems: dict[str, str] = {}
    phones: list[str] = []
    for index, raw in enumerate(body.to):
        try:
            phones.append(normalize_phone(raw, settings.default_country))
        except InvalidPhone as exc:
            problems[f"to.{index}"] = str(exc)
    profiles: dict[int, Profile] = {}
    storable = [i for i in body.profile_ids if is_storable_id(i)]
    if storable:
        found = await session.scalars(
            select(Profile).where(Profile.workspace_id == workspace_id, Profile.id.in_(storable))
        )
        profiles = {profile.id: profile for profile in found}
    for index, profile_id in enumerate(body.profile_ids):
        profile = profiles.get(profile_id)
        if profile is None or profile.erased_at is not None:
            problems[f"profile_ids.{index}"] = f"profile {profile_id} not found"
        elif not profile.phone:
            problems[f"profile_ids.{index}"] = f"profile {profile_id} has no phone number"
    if problems:
        raise ApiError(
            422,
            "validation_error",
            "; ".join(f"{key}: {why}" for key, why in problems.items()),
            fields=problems,
        )
    by_phone = await _profiles_by_phone(session, workspace_id, phones)
    recipients: list[_Recipient] = []
    seen: set[str] = set()
    for phone in phones:
        if phone not in seen:
            seen.add(phone)
            profile = by_phone.get(phone)
            recipients.append(
                _Recipient(phone, profile.id if profile else None, _attributes(profile))
            )
    for profile_id in body.profile_ids:
        profile = profiles[profile_id]
        if profile.phone and profile.phone not in seen:
            seen.add(profile.phone)
            recipients.append(_Recipient(profile.phone, profile.id, _attributes(profile)))
    return recipients


def _attributes(profile: Profile | None) -> Mapping[str, Any]:
    return dict(profile.attributes or {}) if profile is not None else {}


async def _profiles_by_phone(
    session: AsyncSession, workspace_id: int, phones: Sequence[str]
) -> dict[str, Profile]:
    """A typed phone that belongs to a profile is personalized with that profile."""
    if not phones:
        return {}
    found = await session.scalars(
        select(Profile).where(
            Profile.workspace_id == workspace_id,
            Profile.phone.in_(sorted(set(phones))),
            Profile.erased_at.is_(None),
        )
    )
    return {profile.phone: profile for profile in found if profile.phone}


def _prepare(
    provider: ProviderConfig,
    template: Template,
    definition: dict[str, Any],
    personalizer: Personalizer,
    recipients: Sequence[_Recipient],
    body: TestSendIn,
) -> tuple[list[TestRecipientOut], list[NewMessage]]:
    results: list[TestRecipientOut] = []
    rows: list[NewMessage] = []
    for recipient in recipients:
        result = TestRecipientOut(to=recipient.phone, profile_id=recipient.profile_id)
        results.append(result)
        try:
            components = personalizer.components(recipient.attributes)
        except MissingVariable as exc:
            result.outcome, result.ok, result.reason = "skipped", False, exc.reason
            continue
        item = TemplateSend("0-0", recipient.phone, definition, components, body.custom_props)
        check_carried(provider, item, f"template {template.name!r} ({template_type(definition)})")
        result.preview = personalizer.preview(recipient.attributes)
        content: dict[str, Any] = {"components": components}
        if body.custom_props:
            content["custom_props"] = body.custom_props
        rows.append(
            NewMessage(
                provider_id=provider.id,
                to_phone=recipient.phone,
                kind="template",
                content=content,
                template_id=template.id,
                source="test",
                priority=PRIORITY_TEST,
            )
        )
    return results, rows


# --- waiting for the provider ------------------------------------------------------------------


async def _wait_for_answers(runtime: Runtime, ids: Sequence[int], seconds: float) -> None:
    """Until every message has an answered attempt (or never left), or ``seconds`` pass.

    Polls with a growing pause (asyncio.sleep: the loop keeps serving meanwhile).
    """
    if not ids or seconds <= 0:
        return
    deadline = time.monotonic() + seconds
    pause = _FIRST_POLL
    while True:
        async with runtime.sessions() as session:
            if await _all_answered(session, ids):
                return
        left = deadline - time.monotonic()
        if left <= 0:
            return
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, _LONGEST_POLL)


async def _all_answered(session: AsyncSession, ids: Sequence[int]) -> bool:
    answered = set(
        await session.scalars(
            select(Attempt.message_id)
            .where(Attempt.message_id.in_(ids), Attempt.outcome.is_not(None))
            .distinct()
        )
    )
    if len(answered) == len(set(ids)):
        return True
    never_sent = await session.scalars(
        select(Message.id).where(
            Message.id.in_([i for i in ids if i not in answered]),
            Message.status != Status.QUEUED,
            Message.attempt_count == 0,
        )
    )
    return len(answered) + len(list(never_sent)) == len(set(ids))


_OUTCOMES = {
    "accepted": ("accepted", True),
    "rejected": ("failed", False),
    "throttled": ("retrying", False),
    "transient": ("retrying", False),
    "in_doubt": ("in_doubt", None),
}


async def _fill_answers(runtime: Runtime, results: Sequence[TestRecipientOut]) -> None:
    ids = [r.message_id for r in results if r.message_id is not None]
    if not ids:
        return
    async with runtime.sessions() as session:
        messages = {
            m.id: m for m in await session.scalars(select(Message).where(Message.id.in_(ids)))
        }
        attempts: dict[int, Attempt] = {}
        for row in await session.scalars(
            select(Attempt).where(Attempt.message_id.in_(ids)).order_by(Attempt.number)
        ):
            attempts[row.message_id] = row  # the latest attempt wins
        shared = await _shared_requests(session, attempts.values())
    for result in results:
        if result.message_id is None:
            continue
        message = messages[result.message_id]
        result.message_status = message.status
        attempt = attempts.get(result.message_id)
        if attempt is None or attempt.outcome is None:
            if message.status == Status.FAILED:  # refused before any request was made
                result.outcome, result.ok = "failed", False
                result.error = {
                    "code": message.error_code or "",
                    "title": message.error_title or "",
                }
                result.reason = _reason(message.error_code, message.error_title)
            else:
                result.outcome = "waiting"
            continue
        request = _as_dict(attempt.request)
        if "batch_of" in request:  # one MSG91 bulk request carried several recipients
            request = shared.get(str(request["batch_of"]), request)
        result.request = request
        result.attempt = attempt.number
        result.http_status = attempt.http_status
        result.response = attempt.response
        outcome, ok = _OUTCOMES.get(attempt.outcome, (attempt.outcome, None))
        if message.status == Status.FAILED:
            outcome, ok = "failed", False
        result.outcome, result.ok = outcome, ok
        if attempt.error_code:
            result.error = {"code": attempt.error_code, "title": attempt.error_title or ""}
            result.reason = _reason(attempt.error_code, attempt.error_title)
        elif message.status == Status.FAILED:  # accepted, then a failed report came back
            result.error = {"code": message.error_code or "", "title": message.error_title or ""}
            result.reason = _reason(message.error_code, message.error_title)
        elif attempt.outcome == "in_doubt":
            result.reason = message.unknown_reason


async def _shared_requests(session: AsyncSession, attempts: Any) -> dict[str, dict[str, Any]]:
    references = {
        str(request["batch_of"])
        for request in (_as_dict(a.request) for a in attempts)
        if "batch_of" in request
    }
    if not references:
        return {}
    rows = await session.execute(
        select(Attempt.reference, Attempt.request).where(Attempt.reference.in_(references))
    )
    return {reference: _as_dict(request) for reference, request in rows.all() if request}


def _as_dict(request: Any) -> dict[str, Any]:
    """An attempt's stored request as an object (a writer may have stored it pre-serialized)."""
    if isinstance(request, str | bytes):
        try:
            request = json.loads(request)
        except ValueError:
            return {
                "raw": request if isinstance(request, str) else request.decode("utf-8", "replace")
            }
    return dict(request) if isinstance(request, dict) else {}


def _reason(code: str | None, title: str | None) -> str:
    return f"{code}: {title}" if title else str(code or "failed")
