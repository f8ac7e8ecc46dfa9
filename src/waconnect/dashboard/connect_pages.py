"""WhatsApp Connect: provider configs, their callback URLs, verify, rotate token."""

from __future__ import annotations

from typing import TypeVar

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from waconnect.dashboard.auth import DashboardDep, FormDep
from waconnect.dashboard.forms import Errors, ProviderForm, errors_of, require_confirmation
from waconnect.dashboard.render import is_htmx, page
from waconnect.messaging.callbacks import forget_provider
from waconnect.messaging.service import count_by_status
from waconnect.providers import service
from waconnect.providers.schemas import ProviderCreate, ProviderPatch, RotateToken
from waconnect.providers.verify import VerifyResult, verify_provider
from waconnect.templates.service import list_templates
from waconnect.web.deps import RuntimeDep, SessionDep
from waconnect.web.errors import ApiError

router = APIRouter(prefix="/connect", include_in_schema=False)
Body = TypeVar("Body", ProviderCreate, ProviderPatch)

KINDS = [
    ("generic", "Generic (the engagement-suite contract; MSG91 serves it)"),
    ("msg91", "MSG91 (native API)"),
    ("sandbox", "Sandbox (the built-in simulator)"),
]
_DONE = {
    "created": "The provider was added. Paste its callback URLs at the provider.",
    "saved": "Your changes were saved.",
    "rotated": "The callback token was rotated: paste the new URLs at the provider.",
    "deleted": "The provider was deleted.",
}


def _form_page(
    request: Request,
    form: ProviderForm,
    errors: Errors,
    *,
    provider_id: int | None = None,
    is_default: bool = False,
    status: int = 200,
) -> Response:
    """The add/edit form; ``is_default``: the edited provider is the default (and stays so)."""
    values = {
        "form": form,
        "errors": errors,
        "kinds": KINDS,
        "provider_id": provider_id,
        "is_default": is_default,
    }
    return page(request, "connect/form.html", values, status=status)


def _parsed(form: ProviderForm, schema: type[Body]) -> tuple[Body | None, Errors]:
    """The API body of the form, or every field error at once (header table errors first)."""
    errors = form.header_errors()
    try:
        body = schema.model_validate(form.payload(creating=schema is ProviderCreate))
    except ValidationError as exc:
        found = errors_of(exc)
        found.update(errors)  # "a value without a name" says more than "'' is not a name"
        return None, found
    return (None, errors) if errors else (body, {})


@router.get("")
async def providers_list(
    request: Request, context: DashboardDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    configs = await service.list_providers(session, context.workspace_id)
    providers = [service.to_out(runtime, config) for config in configs]
    done = _DONE.get(request.query_params.get("done", ""))
    return page(request, "connect/list.html", {"providers": providers, "done": done})


@router.get("/new")
async def new_provider(request: Request, context: DashboardDep) -> Response:
    return _form_page(request, ProviderForm(), {})


@router.post("/new")
async def create_provider(
    request: Request, context: FormDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    form = ProviderForm.from_request(await request.form())
    body, errors = _parsed(form, ProviderCreate)
    if body is not None:
        try:
            config = await service.create_provider(session, runtime, context.workspace_id, body)
        except ApiError as exc:
            await session.rollback()
            errors = errors_of(exc)
        else:
            await session.commit()
            return RedirectResponse(f"/connect/{config.id}?done=created", 303)
    return _form_page(request, form, errors, status=422)


async def _provider_page(
    request: Request,
    context: DashboardDep,
    session: SessionDep,
    runtime: RuntimeDep,
    provider_id: int,
    verify: VerifyResult | None = None,
) -> Response:
    config = await service.get_provider(session, context.workspace_id, provider_id)
    counts = await count_by_status(session, context.workspace_id, config.id)
    return page(
        request,
        "connect/provider.html",
        {
            "provider": service.to_out(runtime, config),
            "counts": counts,
            "templates": await list_templates(session, context.workspace_id, config.id),
            "verify": verify,
            "grace_hours": f"{runtime.settings.token_grace_hours:g}",
            "done": _DONE.get(request.query_params.get("done", "")),
        },
    )


@router.get("/{provider_id}")
async def provider_page(
    request: Request,
    provider_id: int,
    context: DashboardDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    return await _provider_page(request, context, session, runtime, provider_id)


@router.get("/{provider_id}/edit")
async def edit_provider(
    request: Request,
    provider_id: int,
    context: DashboardDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    config = await service.get_provider(session, context.workspace_id, provider_id)
    form = ProviderForm.from_config(service.to_out(runtime, config))
    return _form_page(request, form, {}, provider_id=config.id, is_default=config.is_default)


@router.post("/{provider_id}/edit")
async def save_provider(
    request: Request,
    provider_id: int,
    context: FormDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    config = await service.get_provider(session, context.workspace_id, provider_id)
    is_default = config.is_default
    form = ProviderForm.from_request(await request.form())
    form.kind = config.kind  # the kind is fixed once made; the form only shows it
    body, errors = _parsed(form, ProviderPatch)
    if body is not None:
        try:
            await service.update_provider(session, runtime, context.workspace_id, config.id, body)
        except ApiError as exc:
            await session.rollback()
            errors = errors_of(exc)
        else:
            await session.commit()
            forget_provider(runtime, provider_id)
            return RedirectResponse(f"/connect/{provider_id}?done=saved", 303)
    return _form_page(
        request, form, errors, provider_id=provider_id, is_default=is_default, status=422
    )


@router.post("/{provider_id}/rotate-token")
async def rotate_token(
    request: Request,
    provider_id: int,
    context: FormDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    raw = (await request.form()).get("grace_hours")
    try:
        grace = RotateToken.model_validate({"grace_hours": raw or None}).grace_hours
    except ValidationError as exc:
        reason = "; ".join(errors_of(exc).values())
        raise ApiError(422, "validation_error", f"grace hours: {reason}") from None
    await service.rotate_token(session, runtime, context.workspace_id, provider_id, grace)
    await session.commit()
    forget_provider(runtime, provider_id)
    return RedirectResponse(f"/connect/{provider_id}?done=rotated", 303)


@router.post("/{provider_id}/verify")
async def verify(
    request: Request,
    provider_id: int,
    context: FormDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    config = await service.get_provider(session, context.workspace_id, provider_id)
    result = await verify_provider(runtime, config)
    if is_htmx(request):
        return page(request, "connect/_verify.html", {"verify": result})
    return await _provider_page(request, context, session, runtime, provider_id, verify=result)


@router.post("/{provider_id}/delete")
async def delete_provider(
    request: Request,
    provider_id: int,
    context: FormDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    # Its messages and templates go with it (cascade): only on an explicit confirmation.
    require_confirmation(await request.form(), "the provider")
    await service.delete_provider(session, context.workspace_id, provider_id)
    await session.commit()
    forget_provider(runtime, provider_id)
    return RedirectResponse("/connect?done=deleted", 303)
