"""API shapes of journeys."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JourneyIn(Strict):
    """A journey definition: a trigger and a graph of nodes with named exits."""

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    trigger: dict[str, Any] = Field(
        description='what starts it: {"type": "event", "event": "cart_abandoned", "where": [...]}, '
        '{"type": "inbound", "keywords": [...]}, {"type": "segment", "segment_id": 1}, '
        '{"type": "message_status", "status": "failed"}, or {"type": "api"}'
    )
    rules: dict[str, Any] = Field(
        default_factory=dict,
        description='{"entry": "once" | "once_per_days" | "unlimited", "entry_days": 7, '
        '"goal": {"event": "purchase"}}',
    )
    start: str = Field(description="the id of the first node")
    nodes: dict[str, dict[str, Any]] = Field(description="node id -> node")

    def definition(self) -> dict[str, Any]:
        return self.model_dump(exclude={"name"})


class JourneyOut(BaseModel):
    id: int
    name: str
    status: Literal["draft", "live", "paused", "stopped"]
    live_version: int | None
    versions: int
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    stats: dict[str, Any] | None = None


class JourneyPage(BaseModel):
    items: list[JourneyOut]
    next_cursor: str | None


class EntryTarget(Strict):
    id: int | None = None
    identity: str | None = None
    phone: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class EntriesIn(Strict):
    profiles: list[EntryTarget] = Field(min_length=1, max_length=1000)


class EntryResult(BaseModel):
    index: int
    status: str  # entered | already_inside | entry_limit | not_found
    profile_id: int | None = None
    run_id: int | None = None


class EntriesOut(BaseModel):
    entered: int
    results: list[EntryResult]


class SimulateIn(Strict):
    profile_id: int | None = None
    identity: str | None = None
    phone: str | None = None
    version: Literal["draft", "live"] = Field(
        default="draft", description="walk the draft being edited (default) or the live version"
    )
    entry: dict[str, Any] = Field(
        default_factory=dict, description="properties of the event that starts the journey"
    )
    script: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=200,
        description='what happens, in order: {"after": "2h"}, {"event": "purchase", '
        '"properties": {...}}, {"reply": {"text": "yes"} | {"payload": "5"}}, '
        '{"status": "read"}, {"webhook": "error"}',
    )


class StepOut(BaseModel):
    visit: int
    node: str
    exit: str | None
    entered_at: datetime
    exited_at: datetime
    message_id: int | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class RunOut(BaseModel):
    run_id: int
    version: int
    state: str
    node: str
    waiting_until: datetime | None
    entered_at: datetime
    finished_at: datetime | None
    exit_reason: str | None
    goal_reached: bool
    steps: list[StepOut]


class ProfilePath(BaseModel):
    journey_id: int
    profile_id: int
    runs: list[RunOut]


class SimulationOut(BaseModel):
    path: list[StepOut]
    state: str
    node: str
    exit_reason: str | None
    waiting_until: datetime | None
    messages: list[dict[str, Any]]
    attributes_set: dict[str, Any]
    events_recorded: list[dict[str, Any]]
