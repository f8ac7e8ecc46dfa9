"""Segments: the builder with a live count, the saved segments with their counts and members."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from waconnect.dashboard.auth import Dashboard, DashboardDep, FormDep
from waconnect.dashboard.forms import Errors, errors_of, raw, require_confirmation, rows, text
from waconnect.dashboard.render import page
from waconnect.profiles import segments
from waconnect.profiles.attributes import AttrType
from waconnect.profiles.definition import ATTRIBUTE_OPS, SUBSCRIPTION_STATES
from waconnect.profiles.service import list_attributes, load_registry
from waconnect.web.deps import ClockDep, SessionDep
from waconnect.web.errors import ApiError

router = APIRouter(prefix="/segments", include_in_schema=False)

KINDS = [("attribute", "Attribute"), ("event", "Event"), ("subscription", "Subscription")]
EVENT_OPS = [("did", "did, within days"), ("did_not", "did not, within days")]
_FIRST_INDEX = re.compile(r"^definition\.(?:all|any)\[(\d+)\]")

# (kind, name, op, value)
Row = tuple[str, str, str, str]


@dataclass
class SegmentForm:
    name: str = ""
    match: str = "all"
    rows: list[Row] = field(default_factory=list)
    mode: str = "builder"
    definition_json: str = ""

    @classmethod
    def from_request(cls, form: FormData) -> SegmentForm:
        conditions = [
            (kind, name.strip(), op, value.strip())
            for kind, name, op, value in rows(form, "cond", ("kind", "name", "op", "value"))
            if name.strip() or kind == "subscription"
        ]
        return cls(
            name=text(form, "name"),
            match="any" if text(form, "match") == "any" else "all",
            rows=conditions,
            mode="json" if text(form, "mode") == "json" else "builder",
            definition_json=raw(form, "definition").strip(),
        )

    def definition(self, types: dict[str, AttrType]) -> tuple[Any, Errors]:
        if self.mode == "json":
            try:
                return orjson.loads(self.definition_json or "{}"), {}
            except orjson.JSONDecodeError as exc:
                return None, {"definition": f"not valid JSON: {exc}"}
        conditions = [_condition(row, types) for row in self.rows]
        return {self.match: conditions}, {}


def _typed(value: str, kind: AttrType | None) -> Any:
    if kind is AttrType.NUMBER:
        try:
            number = float(value)
        except ValueError:
            return value  # the parser names what is wrong
        return int(number) if number.is_integer() else number
    if kind is AttrType.BOOLEAN:
        return {"true": True, "yes": True, "false": False, "no": False}.get(value.lower(), value)
    return value


def _condition(row: Row, types: dict[str, AttrType]) -> dict[str, Any]:
    kind, name, op, value = row
    if kind == "subscription":
        return {"subscription": value or "subscribed"}
    if kind == "event":
        event: dict[str, Any] = {"event": name, "did": op != "did_not"}
        if value:
            event["within_days"] = int(value) if value.isdigit() else value
        return event
    declared = types.get(name)
    if op == "exists":
        return {"attribute": name, "op": op, "value": value.lower() not in ("false", "no")}
    if op == "in":
        items = [_typed(v.strip(), declared) for v in value.split(",") if v.strip()]
        return {"attribute": name, "op": op, "value": items}
    if op == "within_days":
        return {"attribute": name, "op": op, "value": int(value) if value.isdigit() else value}
    return {"attribute": name, "op": op, "value": _typed(value, declared)}


def _row_errors(errors: Errors) -> Errors:
    """``definition.all[2].op`` is about the third row of the builder."""
    shown: Errors = {}
    for path, why in errors.items():
        found = _FIRST_INDEX.match(path)
        if found:
            shown[f"cond.{found.group(1)}"] = f"{path.removeprefix('definition.')}: {why}"
        else:
            shown[path if path in ("name", "definition") else "form"] = why
    return shown


async def _count(
    session: SessionDep, clock: ClockDep, context: Dashboard, form: SegmentForm
) -> tuple[int | None, Errors]:
    types = await load_registry(session, context.workspace_id)
    definition, errors = form.definition(types)
    if errors:
        return None, errors
    try:
        node = await segments.compile_definition(session, context.workspace_id, definition)
    except ApiError as exc:
        return None, _row_errors(exc.fields or {"form": exc.message})
    return await segments.count(session, clock.now(), context.workspace_id, node), {}


async def _builder(
    request: Request,
    context: Dashboard,
    session: SessionDep,
    form: SegmentForm,
    errors: Errors,
    count: int | None,
    status: int = 200,
) -> Response:
    attributes = await list_attributes(session, context.workspace_id)
    values = {
        "form": form,
        "errors": errors,
        "count": count,
        "kinds": KINDS,
        "attribute_ops": [(op, op.replace("_", " ")) for op in ATTRIBUTE_OPS],
        "event_ops": EVENT_OPS,
        "subscriptions": [(s, s) for s in SUBSCRIPTION_STATES],
        "attributes": attributes,
        "rows": form.rows or [("attribute", "", "eq", "")],
    }
    return page(request, "segments/builder.html", values, status=status)


@router.get("")
async def segments_list(
    request: Request, context: DashboardDep, session: SessionDep, clock: ClockDep
) -> Response:
    now = clock.now()
    found = []
    for segment in await segments.list_segments(session, context.workspace_id):
        try:
            node = await segments.compile_definition(
                session, context.workspace_id, segment.definition
            )
            size: int | str = await segments.count(session, now, context.workspace_id, node)
        except ApiError as exc:  # an attribute it names has gone
            size = f"cannot count: {exc.message}"
        found.append((segment, size))
    done = "The segment was deleted." if request.query_params.get("done") == "deleted" else None
    return page(request, "segments/list.html", {"segments": found, "done": done})


@router.get("/new")
async def new_segment(
    request: Request, context: DashboardDep, session: SessionDep, clock: ClockDep
) -> Response:
    form = SegmentForm()
    count, _errors = await _count(session, clock, context, SegmentForm(rows=[]))
    return await _builder(request, context, session, form, {}, count)


@router.post("/count")
async def live_count(
    request: Request, context: FormDep, session: SessionDep, clock: ClockDep
) -> Response:
    form = SegmentForm.from_request(await request.form())
    count, errors = await _count(session, clock, context, form)
    return page(request, "segments/_count.html", {"count": count, "count_errors": errors})


@router.post("/new")
async def create_segment(
    request: Request, context: FormDep, session: SessionDep, clock: ClockDep
) -> Response:
    form = SegmentForm.from_request(await request.form())
    count, errors = await _count(session, clock, context, form)
    if not form.name:
        errors["name"] = "required: a name to pick this audience by"
    if not errors:
        types = await load_registry(session, context.workspace_id)
        definition, _ = form.definition(types)
        if not isinstance(definition, dict):
            errors["definition"] = 'a definition is a JSON object such as {"all": [...]}'
        else:
            try:
                made = await segments.create_segment(
                    session, clock.now(), context.workspace_id, form.name, definition
                )
            except ApiError as exc:
                await session.rollback()
                errors = {"name": exc.message} if exc.status == 409 else errors_of(exc)
            else:
                await session.commit()
                return RedirectResponse(f"/segments/{made.id}", 303)
    return await _builder(request, context, session, form, errors, count, status=422)


@router.get("/{segment_id}")
async def segment_page(
    request: Request,
    segment_id: int,
    context: DashboardDep,
    session: SessionDep,
    clock: ClockDep,
) -> Response:
    segment = await segments.get_segment(session, context.workspace_id, segment_id)
    now = clock.now()
    node = await segments.compile_definition(session, context.workspace_id, segment.definition)
    values = {
        "segment": segment,
        "count": await segments.count(session, now, context.workspace_id, node),
        "members": await segments.preview(session, now, context.workspace_id, node, 20),
    }
    return page(request, "segments/segment.html", values)


@router.post("/{segment_id}/delete")
async def delete_segment(
    request: Request, segment_id: int, context: FormDep, session: SessionDep
) -> Response:
    await segments.get_segment(session, context.workspace_id, segment_id)
    require_confirmation(await request.form(), "the segment")
    await segments.delete_segment(session, context.workspace_id, segment_id)
    await session.commit()
    return RedirectResponse("/segments?done=deleted", 303)
