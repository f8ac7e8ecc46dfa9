"""The engine's world on the database: answers read in the batch's transaction, effects
collected and written together at the end (one enqueue per workspace, one insert of steps,
one update of runs), so a batch of a thousand due timers costs a handful of statements."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from waconnect.journeys.engine import ProfileView, RunState, Step, TemplateRef
from waconnect.journeys.models import JourneyRun, JourneySignal, JourneyStep
from waconnect.journeys.values import conditions_hold
from waconnect.messaging import pacing
from waconnect.messaging.inbound import window_open_until
from waconnect.messaging.models import Contact, Message
from waconnect.messaging.service import PRIORITY_JOURNEY, NewMessage, enqueue
from waconnect.profiles.models import Event, Profile, Segment
from waconnect.providers.models import ProviderConfig
from waconnect.runtime import Runtime
from waconnect.templates.models import Template
from waconnect.workspaces.schemas import WorkspaceSettings
from waconnect.workspaces.service import get_workspace, settings_of

RUNS = cast(Table, JourneyRun.__table__)
STEPS = cast(Table, JourneyStep.__table__)
SIGNALS = cast(Table, JourneySignal.__table__)
PROFILES = cast(Table, Profile.__table__)
CONTACTS = cast(Table, Contact.__table__)
MESSAGES = cast(Table, Message.__table__)
EVENTS = cast(Table, Event.__table__)
CHUNK = 500


# Templates and providers, shared by the batches of the next few seconds: a batch of timers
# asks the same questions as the one before (a live journey's templates cannot change
# without force).
SHARED_TTL = 2.0
_shared: dict[tuple[str, Any], tuple[float, Any]] = {}


def _recent(key: tuple[str, Any]) -> Any:
    found = _shared.get(key)
    if found is None or time.monotonic() - found[0] > SHARED_TTL:
        return None
    return found[1]


def _remember(key: tuple[str, Any], value: Any) -> None:
    if len(_shared) > 10_000:
        _shared.clear()
    _shared[key] = (time.monotonic(), value)


@dataclass
class _Send:
    run: RunState
    workspace_id: int
    message: NewMessage


@dataclass
class DbWorld:
    session: AsyncSession
    runtime: Runtime
    now: datetime
    workspace_timezone: str = "UTC"
    _settings: dict[int, WorkspaceSettings] = field(default_factory=dict)
    _profiles: dict[int, ProfileView | None] = field(default_factory=dict)
    _subscriptions: dict[tuple[int, str], bool] = field(default_factory=dict)
    _templates: dict[tuple[int, int | None, str, str], TemplateRef | str] = field(
        default_factory=dict
    )
    _segments: dict[int, Any] = field(default_factory=dict)
    sends: list[_Send] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    attribute_sets: list[tuple[int, ProfileView, dict[str, Any]]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    _batch_sends: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    # --- reads ---------------------------------------------------------------------------------

    def _shared_key(self, key: Any) -> tuple[str, Any]:
        return (str(self.session.get_bind().engine.url), key)

    async def settings(self, workspace_id: int) -> WorkspaceSettings:
        if workspace_id not in self._settings:
            workspace = await get_workspace(self.session, workspace_id)
            self._settings[workspace_id] = settings_of(workspace)
        return self._settings[workspace_id]

    async def use_workspace(self, workspace_id: int) -> None:
        self.workspace_timezone = (await self.settings(workspace_id)).timezone

    async def preload(self, profile_ids: list[int]) -> None:
        """Profiles and their subscriptions for a whole batch in a few queries."""
        wanted = [pid for pid in set(profile_ids) if pid not in self._profiles]
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            rows = await self.session.execute(
                select(
                    PROFILES.c.id,
                    PROFILES.c.workspace_id,
                    PROFILES.c.identity,
                    PROFILES.c.phone,
                    PROFILES.c.attributes,
                    PROFILES.c.timezone,
                    PROFILES.c.erased_at,
                    CONTACTS.c.subscription,
                )
                .select_from(
                    PROFILES.outerjoin(
                        CONTACTS,
                        (CONTACTS.c.workspace_id == PROFILES.c.workspace_id)
                        & (CONTACTS.c.phone == PROFILES.c.phone),
                    )
                )
                .where(PROFILES.c.id.in_(chunk))
            )
            for pid, ws, identity, phone, attributes, tz, erased, subscription in rows:
                if erased is not None:
                    self._profiles[pid] = None
                    continue
                self._profiles[pid] = ProfileView(pid, identity, phone, dict(attributes or {}), tz)
                if phone:
                    # No contact yet: the workspace's default for new numbers applies.
                    if subscription is None:
                        subscription = (await self.settings(ws)).new_contact_subscription
                    self._subscriptions[(ws, phone)] = subscription == "subscribed"
            for pid in chunk:
                self._profiles.setdefault(pid, None)

    async def profile(self, profile_id: int) -> ProfileView | None:
        if profile_id not in self._profiles:
            await self.preload([profile_id])
        return self._profiles.get(profile_id)

    async def subscribed(self, workspace_id: int, phone: str) -> bool:
        key = (workspace_id, phone)
        if key not in self._subscriptions:
            found = await self.session.scalar(
                select(CONTACTS.c.subscription).where(
                    CONTACTS.c.workspace_id == workspace_id, CONTACTS.c.phone == phone
                )
            )
            if found is None:
                found = (await self.settings(workspace_id)).new_contact_subscription
            self._subscriptions[key] = found == "subscribed"
        return self._subscriptions[key]

    async def _provider_id(self, workspace_id: int, provider_id: int | None) -> int | str:
        if provider_id is None:
            found = await self.session.scalar(
                select(ProviderConfig.id).where(
                    ProviderConfig.workspace_id == workspace_id, ProviderConfig.is_default
                )
            )
            return found if found is not None else "no_provider"
        owner = await self.session.scalar(
            select(ProviderConfig.workspace_id).where(ProviderConfig.id == provider_id)
        )
        return provider_id if owner == workspace_id else "provider_not_found"

    async def provider(self, workspace_id: int, provider_id: int | None) -> int | str:
        key = (workspace_id, provider_id, "", "")
        if key not in self._templates:
            found = await self._provider_id(workspace_id, provider_id)
            self._templates[key] = (
                TemplateRef(found, 0, {}, "") if isinstance(found, int) else found
            )
        ref = self._templates[key]
        return ref.provider_id if isinstance(ref, TemplateRef) else ref

    async def template(
        self, workspace_id: int, provider_id: int | None, name: str, language: str
    ) -> TemplateRef | str:
        key = (workspace_id, provider_id, name, language)
        if key not in self._templates:
            shared = _recent(self._shared_key(key))
            if shared is None:
                shared = await self._load_template(workspace_id, provider_id, name, language)
                _remember(self._shared_key(key), shared)
            self._templates[key] = shared
        return self._templates[key]

    async def _load_template(
        self, workspace_id: int, provider_id: int | None, name: str, language: str
    ) -> TemplateRef | str:
        found = await self.provider(workspace_id, provider_id)
        if isinstance(found, str):
            return found
        template = await self.session.scalar(
            select(Template).where(
                Template.provider_id == found,
                Template.name == name,
                Template.language == language,
            )
        )
        if template is None:
            return "template_not_found"
        if template.status != "APPROVED":
            return f"template_not_approved:{template.status}"
        definition = dict(template.definition)
        definition.update(
            name=template.name,
            language=template.language,
            category=template.category,
            namespace=template.namespace,
        )
        return TemplateRef(
            found, template.id, definition, f"{template.id}:{template.updated_at.isoformat()}"
        )

    async def window_open(self, workspace_id: int, provider_id: int | None, phone: str) -> bool:
        found = await self.provider(workspace_id, provider_id)
        if isinstance(found, str):
            return False
        until = await window_open_until(self.session, found, phone, workspace_id)
        return until is not None and until > self.now

    async def hold_until(self, workspace_id: int, profile: ProfileView) -> datetime | None:
        """The end of the workspace's DND hours when now is inside them (profile's timezone)."""
        settings = await self.settings(workspace_id)
        if settings.dnd is None:
            return None
        allowed = pacing.next_allowed(
            self.now, settings.dnd, pacing.zone(profile.timezone, settings.timezone)
        )
        return allowed if allowed > self.now else None

    async def capped(self, workspace_id: int, phone: str) -> bool:
        """The workspace's frequency cap, counted over every WhatsApp message to the number
        (campaigns, journeys, API) in the rolling window, plus this batch's own sends."""
        cap = (await self.settings(workspace_id)).frequency_cap
        if cap is None:
            return False
        sent = await pacing.sent_counts(
            self.session, workspace_id, [phone], self.now - timedelta(hours=cap.hours)
        )
        pending = sum(
            1 for s in self.sends if s.workspace_id == workspace_id and s.message.to_phone == phone
        )
        return sent.get(phone, 0) + pending >= cap.messages

    async def event_since(
        self, profile_id: int, name: str, since: datetime, where: list[dict[str, Any]]
    ) -> bool:
        rows = await self.session.execute(
            select(EVENTS.c.properties)
            .where(EVENTS.c.profile_id == profile_id, EVENTS.c.name == name, EVENTS.c.ts >= since)
            .limit(200)
        )
        if any(conditions_hold(where, props or {}) for (props,) in rows):
            return True
        # Events this batch recorded itself.
        return any(
            e["profile_id"] == profile_id
            and e["name"] == name
            and conditions_hold(where, e["properties"])
            for e in self.events
        )

    async def in_segment(self, workspace_id: int, profile_id: int, segment_id: int) -> bool:
        from waconnect.profiles.compiler import ids_query
        from waconnect.profiles.segments import compile_definition
        from waconnect.profiles.service import dialect_of

        if segment_id not in self._segments:
            segment = await self.session.get(Segment, segment_id)
            if segment is None or segment.workspace_id != workspace_id:
                self._segments[segment_id] = None
            else:
                self._segments[segment_id] = await compile_definition(
                    self.session, workspace_id, segment.definition
                )
        node = self._segments[segment_id]
        if node is None:
            return False
        query = ids_query(node, dialect_of(self.session), workspace_id, self.now).where(
            PROFILES.c.id == profile_id
        )
        return (await self.session.scalar(query)) is not None

    async def message_status(self, message_id: int) -> str | None:
        return cast(
            str | None,
            await self.session.scalar(select(MESSAGES.c.status).where(MESSAGES.c.id == message_id)),
        )

    # --- effects ---------------------------------------------------------------------------------

    def send(
        self,
        run: RunState,
        provider_id: int,
        phone: str,
        kind: str,
        content: dict[str, Any],
        template_id: int | None,
    ) -> int:
        self.sends.append(
            _Send(
                run,
                run.workspace_id,
                NewMessage(
                    provider_id=provider_id,
                    to_phone=phone,
                    kind=kind,
                    content=content,
                    template_id=template_id,
                    source="journey",
                    priority=PRIORITY_JOURNEY,
                ),
            )
        )
        return len(self.sends) - 1

    def set_attributes(self, run: RunState, profile: ProfileView, values: dict[str, Any]) -> None:
        self.attribute_sets.append((run.workspace_id, profile, values))

    def record_event(self, run: RunState, name: str, properties: dict[str, Any]) -> None:
        self.events.append(
            {
                "workspace_id": run.workspace_id,
                "profile_id": run.profile_id,
                "name": name,
                "ts": self.now,
                "properties": properties,
                "message_id": None,
            }
        )

    def step(self, step: Step) -> None:
        self.steps.append(step)

    async def apply(self, runs: list[RunState]) -> None:
        """Write every effect of the batch in the session's transaction (commits nothing)."""
        message_ids = await self._enqueue()
        for run in runs:
            _resolve_sends(run, message_ids)
        if self.steps:
            await self.session.execute(
                STEPS.insert(),
                [
                    {
                        "run_id": s.run.id,
                        "journey_id": s.run.journey_id,
                        "version_id": s.run.version_id,
                        "visit": s.visit,
                        "node": s.node,
                        "exit": s.exit,
                        "entered_at": s.entered_at,
                        "exited_at": s.exited_at,
                        "message_id": s.message_id
                        if s.message_id is not None
                        else (message_ids.get(s.send_ref) if s.send_ref is not None else None),
                        "detail": s.detail,
                    }
                    for s in self.steps
                ],
            )
        await save_runs(self.session, runs, self.now)
        await self._write_attributes()
        await self._write_events()

    async def _enqueue(self) -> dict[int, int]:
        by_workspace: dict[int, list[int]] = defaultdict(list)
        for index, send in enumerate(self.sends):
            by_workspace[send.workspace_id].append(index)
        ids: dict[int, int] = {}
        for workspace_id, indexes in by_workspace.items():
            created = await enqueue(
                self.session, self.runtime, workspace_id, [self.sends[i].message for i in indexes]
            )
            ids.update(zip(indexes, created, strict=True))
        return ids

    async def _write_attributes(self) -> None:
        if not self.attribute_sets:
            return
        from waconnect.profiles.service import ProfileRow, upsert_rows

        by_workspace: dict[int, list[ProfileRow]] = defaultdict(list)
        for workspace_id, profile, values in self.attribute_sets:
            by_workspace[workspace_id].append(
                ProfileRow(
                    identity=profile.identity,
                    phone=None if profile.identity else profile.phone,
                    attributes=values,
                )
            )
        for workspace_id, rows in by_workspace.items():
            await upsert_rows(self.session, self.now, workspace_id, rows, "journey")

    async def _write_events(self) -> None:
        if not self.events:
            return
        from waconnect.profiles.events import notify_event_listeners

        await self.session.execute(EVENTS.insert(), self.events)
        await notify_event_listeners(self.session, self.events)


def _resolve_sends(run: RunState, message_ids: dict[int, int]) -> None:
    """Batch send numbers in the context become message ids once the rows exist."""
    context = run.context
    if "last_send" in context:
        message_id = message_ids.get(context.pop("last_send"))
        if message_id is not None:
            context["last_message_id"] = message_id
    if "payment_send" in context:
        message_id = message_ids.get(context.pop("payment_send"))
        if message_id is not None:
            context["payment_message_id"] = message_id


async def save_runs(session: AsyncSession, runs: list[RunState], now: datetime) -> None:
    """Each run's state, its next due time, and its lease handed back."""
    if not runs:
        return
    await session.execute(
        update(RUNS)
        .where(RUNS.c.id == bindparam("b_id"))
        .values(
            state=bindparam("b_state"),
            node=bindparam("b_node"),
            visit=bindparam("b_visit"),
            due_at=bindparam("b_due"),
            context=bindparam("b_context"),
            exit_reason=bindparam("b_reason"),
            goal_reached=bindparam("b_goal"),
            finished_at=bindparam("b_finished"),
            updated_at=now,
            lease_owner=None,
            lease_until=None,
        ),
        [
            {
                "b_id": run.id,
                "b_state": run.state,
                "b_node": run.node,
                "b_visit": run.visit,
                "b_due": None
                if run.finished
                else (run.timer_at if run.state == "waiting" else now),
                "b_context": run.context,
                "b_reason": run.exit_reason,
                "b_goal": run.goal_reached,
                "b_finished": run.finished_at,
            }
            for run in runs
        ],
    )
    # An event that arrived for one of these runs while we worked must wake it again.
    ids = [run.id for run in runs if not run.finished]
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        pending = select(SIGNALS.c.run_id).where(SIGNALS.c.run_id.in_(chunk))
        await session.execute(update(RUNS).where(RUNS.c.id.in_(pending)).values(due_at=now))
