"""Verify a provider config: send the contract's validation payload (generic, A2.4) or an
authenticated harmless call (msg91), and report what the provider answered.

This messages no customer, so it may call the adapter directly rather than go through the
outbox (design.md, "The outbox is the queue").
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel

from waconnect.providers.adapters import get_adapter
from waconnect.providers.models import ProviderConfig
from waconnect.providers.service import endpoint_for
from waconnect.providers.transport import AiohttpTransport, InDoubt, NotSent
from waconnect.runtime import Runtime


class VerifyResult(BaseModel):
    ok: bool
    message: str
    request: dict[str, Any]
    http_status: int | None
    response: str | None
    error: dict[str, str] | None
    elapsed_ms: float


async def verify_provider(runtime: Runtime, config: ProviderConfig) -> VerifyResult:
    adapter = get_adapter(config.kind)
    request = adapter.build_verify_request(endpoint_for(runtime, config))
    transport = AiohttpTransport(1, runtime.settings.http_timeout_seconds)
    started = time.monotonic()
    try:
        response = await transport.send(request)
    except (NotSent, InDoubt) as exc:
        return VerifyResult(
            ok=False,
            message=f"the provider did not answer: {exc}",
            request=request.masked(),
            http_status=None,
            response=None,
            error={"code": "net:unreachable", "title": str(exc)},
            elapsed_ms=round((time.monotonic() - started) * 1000, 1),
        )
    finally:
        await transport.close()
    elapsed = round((time.monotonic() - started) * 1000, 1)
    error = adapter.parse_verify_response(response.status, response.body)
    body = response.body[:2000].decode("utf-8", "replace")
    if error is None:
        message = f"the provider accepted the validation request (HTTP {response.status})"
    else:
        message = f"the provider refused the validation request: {error.title} ({error.code})"
    return VerifyResult(
        ok=error is None,
        message=message,
        request=request.masked(),
        http_status=response.status,
        response=body,
        error={"code": error.code, "title": error.title, "family": error.family} if error else None,
        elapsed_ms=elapsed,
    )
