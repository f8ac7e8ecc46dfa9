"""``/api/v1/providers``: WhatsApp Connect provider configs."""

from __future__ import annotations

from fastapi import APIRouter, Response

from waconnect.messaging.callbacks import forget_provider
from waconnect.providers import service
from waconnect.providers.schemas import ProviderCreate, ProviderOut, ProviderPatch, RotateToken
from waconnect.providers.verify import VerifyResult
from waconnect.providers.verify import verify_provider as verify
from waconnect.web.deps import PrincipalDep, RuntimeDep, SessionDep

router = APIRouter(prefix="/providers", tags=["providers"])


@router.post("", response_model=ProviderOut, status_code=201)
async def create_provider(
    body: ProviderCreate, principal: PrincipalDep, session: SessionDep, runtime: RuntimeDep
) -> ProviderOut:
    config = await service.create_provider(session, runtime, principal.workspace_id, body)
    return service.to_out(runtime, config)


@router.get("", response_model=list[ProviderOut])
async def list_providers(
    principal: PrincipalDep, session: SessionDep, runtime: RuntimeDep
) -> list[ProviderOut]:
    configs = await service.list_providers(session, principal.workspace_id)
    return [service.to_out(runtime, config) for config in configs]


@router.get("/{provider_id}", response_model=ProviderOut)
async def get_provider(
    provider_id: int, principal: PrincipalDep, session: SessionDep, runtime: RuntimeDep
) -> ProviderOut:
    config = await service.get_provider(session, principal.workspace_id, provider_id)
    return service.to_out(runtime, config)


@router.patch("/{provider_id}", response_model=ProviderOut)
async def patch_provider(
    provider_id: int,
    body: ProviderPatch,
    principal: PrincipalDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ProviderOut:
    config = await service.update_provider(
        session, runtime, principal.workspace_id, provider_id, body
    )
    await session.commit()
    forget_provider(runtime, provider_id)  # its callback header may have changed
    return service.to_out(runtime, config)


@router.delete("/{provider_id}", status_code=204)
async def delete_provider(
    provider_id: int, principal: PrincipalDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    await service.delete_provider(session, principal.workspace_id, provider_id)
    await session.commit()
    forget_provider(runtime, provider_id)
    return Response(status_code=204)


@router.post("/{provider_id}/rotate-token", response_model=ProviderOut)
async def rotate_token(
    provider_id: int,
    principal: PrincipalDep,
    session: SessionDep,
    runtime: RuntimeDep,
    body: RotateToken | None = None,
) -> ProviderOut:
    grace = body.grace_hours if body else None
    config = await service.rotate_token(
        session, runtime, principal.workspace_id, provider_id, grace
    )
    await session.commit()
    forget_provider(runtime, provider_id)  # the cached tokens are stale now
    return service.to_out(runtime, config)


@router.post("/{provider_id}/verify", response_model=VerifyResult)
async def verify_provider(
    provider_id: int, principal: PrincipalDep, session: SessionDep, runtime: RuntimeDep
) -> VerifyResult:
    """Send the validation payload and return what the provider answered."""
    config = await service.get_provider(session, principal.workspace_id, provider_id)
    return await verify(runtime, config)
