"""Templates: the list per provider, the editor with its live preview, import, and test sends."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from waconnect.dashboard.auth import Dashboard, DashboardDep, FormDep
from waconnect.dashboard.forms import Errors, errors_of, require_confirmation
from waconnect.dashboard.preview import bubble
from waconnect.dashboard.render import is_htmx, page
from waconnect.dashboard.template_form import (
    BUTTON_TYPES,
    EMPTY_BUTTON,
    HEADER_FORMATS,
    TemplateForm,
    field_errors,
)
from waconnect.profiles.service import list_profiles
from waconnect.providers.service import get_provider, list_providers
from waconnect.templates import importer, sending, service
from waconnect.templates.personalization import example_mapping, template_slots
from waconnect.templates.schemas import TemplateIn, TemplatePatch, TestSendIn
from waconnect.templates.validation import CATEGORIES, STATUSES, validate_template
from waconnect.web.deps import ClockDep, RuntimeDep, SessionDep
from waconnect.web.errors import ApiError

router = APIRouter(prefix="/templates", include_in_schema=False)

_DONE = {
    "created": "The template was saved.",
    "saved": "Your changes were saved.",
    "deleted": "The template was deleted.",
}


async def _provider_options(session: SessionDep, context: Dashboard) -> list[tuple[str, str]]:
    configs = await list_providers(session, context.workspace_id)
    return [(str(c.id), f"{c.nickname} ({c.mobile_number})") for c in configs]


@router.get("")
async def templates_list(request: Request, context: DashboardDep, session: SessionDep) -> Response:
    configs = await list_providers(session, context.workspace_id)
    wanted = request.query_params.get("provider_id", "")
    groups = []
    for config in configs:
        if wanted and str(config.id) != wanted:
            continue
        rows = await service.list_templates(session, context.workspace_id, config.id)
        groups.append((config, [service.to_out(row) for row in rows]))
    return page(
        request,
        "templates/list.html",
        {
            "groups": groups,
            "providers": configs,
            "provider_options": [(str(c.id), c.nickname) for c in configs],
            "wanted": wanted,
            "done": _DONE.get(request.query_params.get("done", "")),
        },
    )


# --- the editor ---------------------------------------------------------------------------------


async def _editor(
    request: Request,
    context: Dashboard,
    session: SessionDep,
    form: TemplateForm,
    errors: Errors,
    *,
    template_id: int | None = None,
    status: int = 200,
) -> Response:
    definition, _unreadable = form.definition()
    values: dict[str, Any] = {
        "form": form,
        "errors": errors,
        "template_id": template_id,
        "provider_options": await _provider_options(session, context),
        "categories": [(c, c.title()) for c in CATEGORIES],
        "statuses": [(s, s.replace("_", " ").title()) for s in STATUSES],
        "header_formats": [(f, f.title() if f else "No header") for f in HEADER_FORMATS],
        "button_types": [(t, t.replace("_", " ").title()) for t in BUTTON_TYPES],
        "button_rows": form.buttons or [EMPTY_BUTTON],
        "bubble": bubble(definition),
        "violations": {},
    }
    return page(request, "templates/form.html", values, status=status)


@router.get("/new")
async def new_template(request: Request, context: DashboardDep, session: SessionDep) -> Response:
    form = TemplateForm(provider_id=request.query_params.get("provider_id", ""))
    form.body_text = "Hi {{1}}, your order {{2}} is on its way."
    form.body_examples = "Asha\nA-1001"
    return await _editor(request, context, session, form, {})


def _checked_definition(form: TemplateForm) -> tuple[dict[str, Any], Errors]:
    """The definition and every error a person must fix, at the fields that show them."""
    definition, errors = form.definition()
    if errors:
        return definition, errors
    return definition, field_errors(validate_template(definition), form.mode)


def _api_errors(exc: ApiError | ValidationError, mode: str) -> Errors:
    if isinstance(exc, ApiError) and exc.status == 422 and exc.fields:
        return field_errors(exc.fields, mode)
    return (
        field_errors(errors_of(exc), mode) if isinstance(exc, ValidationError) else (errors_of(exc))
    )


@router.post("/new")
async def create_template(
    request: Request, context: FormDep, session: SessionDep, clock: ClockDep
) -> Response:
    form = TemplateForm.from_request(await request.form())
    definition, errors = _checked_definition(form)
    if not form.provider_id.isdigit():
        errors["provider_id"] = "choose the provider this template is approved on"
    if not errors:
        try:
            body = TemplateIn.model_validate(definition)
            made = await service.create_template(
                session, clock, context.workspace_id, int(form.provider_id), body
            )
        except (ApiError, ValidationError) as exc:
            await session.rollback()
            errors = _api_errors(exc, form.mode)
        else:
            await session.commit()
            return RedirectResponse(f"/templates/{made.id}?done=created", 303)
    return await _editor(request, context, session, form, errors, status=422)


@router.post("/preview")
async def live_preview(request: Request, context: FormDep) -> Response:
    """The bubble and the rules broken so far, for the editor as it is being typed."""
    form = TemplateForm.from_request(await request.form())
    definition, errors = _checked_definition(form)
    values = {"bubble": bubble(definition), "violations": errors}
    return page(request, "templates/_preview.html", values)


@router.get("/{template_id}")
async def template_page(
    request: Request,
    template_id: int,
    context: DashboardDep,
    session: SessionDep,
    clock: ClockDep,
) -> Response:
    template = service.to_out(
        await service.get_template(session, context.workspace_id, template_id)
    )
    provider = await get_provider(session, context.workspace_id, template.provider_id)
    data = template.model_dump(mode="json")
    recent = await list_profiles(
        session, clock.now(), context.workspace_id, None, None, None, None, None, 20
    )
    return page(
        request,
        "templates/template.html",
        {
            "template": template,
            "provider": provider,
            "bubble": bubble(data),
            "definition": {k: data[k] for k in ("name", "language", "category", "components")},
            "done": _DONE.get(request.query_params.get("done", "")),
            "slots": template_slots(data),
            "samples": {
                key: entry["literal"]
                for key, entry in example_mapping(data).items()
                if isinstance(entry.get("literal"), str)
            },
            "profiles": [p for p in recent.items if p.phone],
        },
    )


@router.get("/{template_id}/edit")
async def edit_template(
    request: Request, template_id: int, context: DashboardDep, session: SessionDep
) -> Response:
    template = service.to_out(
        await service.get_template(session, context.workspace_id, template_id)
    )
    form = TemplateForm.from_definition(template.model_dump(mode="json"), template.provider_id)
    return await _editor(request, context, session, form, {}, template_id=template_id)


@router.post("/{template_id}/edit")
async def save_template(
    request: Request,
    template_id: int,
    context: FormDep,
    session: SessionDep,
    clock: ClockDep,
) -> Response:
    stored = await service.get_template(session, context.workspace_id, template_id)
    form = TemplateForm.from_request(await request.form())
    form.provider_id = str(stored.provider_id)  # a template stays on its provider
    definition, errors = _checked_definition(form)
    if not errors:
        try:
            patch = TemplatePatch.model_validate(definition)
            await service.update_template(session, clock, context.workspace_id, template_id, patch)
        except (ApiError, ValidationError) as exc:
            await session.rollback()
            errors = _api_errors(exc, form.mode)
        else:
            await session.commit()
            return RedirectResponse(f"/templates/{template_id}?done=saved", 303)
    return await _editor(
        request, context, session, form, errors, template_id=template_id, status=422
    )


@router.post("/{template_id}/delete")
async def delete_template(
    request: Request, template_id: int, context: FormDep, session: SessionDep
) -> Response:
    template = await service.get_template(session, context.workspace_id, template_id)
    require_confirmation(await request.form(), "the template")
    await service.delete_template(session, context.workspace_id, template_id)
    await session.commit()
    return RedirectResponse(f"/templates?provider_id={template.provider_id}&done=deleted", 303)


# --- import -------------------------------------------------------------------------------------


@router.post("/import")
async def import_from_provider(request: Request, context: FormDep, runtime: RuntimeDep) -> Response:
    raw = (await request.form()).get("provider_id")
    if not isinstance(raw, str) or not raw.isdigit():
        raise ApiError(422, "validation_error", "choose the provider to import from")
    report = await importer.import_templates(runtime, context.workspace_id, int(raw))
    return page(request, "templates/import.html", {"report": report})


# --- test sends ---------------------------------------------------------------------------------


def _test_body(form: FormData) -> dict[str, Any]:
    """A ``TestSendIn`` body from the dialog: numbers, picked profiles, and the values given
    (an empty value takes the template's sample)."""
    numbers = str(form.get("numbers") or "").replace(",", "\n").splitlines()
    mapping: dict[str, Any] = {}
    for name, value in form.multi_items():
        if not name.startswith("value.") or not isinstance(value, str) or not value.strip():
            continue
        key = name.removeprefix("value.")
        source = form.get(f"source.{key}")
        mapping[key] = (
            {"attribute": value.strip()} if source == "attribute" else {"literal": value.strip()}
        )
    return {
        "to": [n.strip() for n in numbers if n.strip()],
        "profile_ids": [p for p in form.getlist("profile_ids") if isinstance(p, str)],
        "mapping": mapping,
    }


@router.post("/{template_id}/test")
async def send_test(
    request: Request, template_id: int, context: FormDep, runtime: RuntimeDep
) -> Response:
    """Send the test, wait for the provider's answers, show each request and response."""
    problem: str | None = None
    result = None
    try:
        body = TestSendIn.model_validate(_test_body(await request.form()))
        result = await sending.send_test(runtime, context.workspace_id, template_id, body)
    except ValidationError as exc:
        problem = "; ".join(errors_of(exc).values())
    except ApiError as exc:
        if exc.status == 404:
            raise
        problem = exc.message[:1].upper() + exc.message[1:]
    values = {"result": result, "problem": problem, "template_id": template_id}
    if is_htmx(request):  # the dialog shows what went wrong in place
        return page(request, "templates/_test_result.html", values)
    return page(request, "templates/test_page.html", values, status=422 if problem else 200)
