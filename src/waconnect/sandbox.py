"""``serve --with-simulator``: the simulator beside the server, connected and ready to send.

A new user gets a ``sandbox`` provider config pointing at the simulator, an approved demo
template, and the simulator posting its reports to that config's callback URLs — so a message
goes out and comes back in the first minute, without a provider account.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import aiohttp
from sqlalchemy import select

from waconnect.providers.models import ProviderConfig
from waconnect.providers.schemas import AutoReply, ProviderCreate
from waconnect.providers.service import callback_urls, create_provider
from waconnect.runtime import Runtime
from waconnect.templates.schemas import TemplateIn
from waconnect.templates.service import create_template, find_template
from waconnect.workspaces.service import ensure_default_workspace

log = logging.getLogger("waconnect.sandbox")

SANDBOX_NICKNAME = "Simulator"
SANDBOX_NUMBER = "918000000001"
DEMO_TEMPLATE = {
    "name": "welcome",
    "language": "en",
    "category": "UTILITY",
    "status": "APPROVED",
    "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Welcome to waconnect"},
        {
            "type": "BODY",
            "text": "Hi {{1}}, your order {{2}} is confirmed. Reply if you have a question.",
            "example": {"body_text": [["Asha", "A-1001"]]},
        },
        {"type": "FOOTER", "text": "Sent from the waconnect simulator"},
        {
            "type": "BUTTONS",
            "buttons": [
                {"type": "QUICK_REPLY", "text": "Thanks"},
                {"type": "QUICK_REPLY", "text": "Talk to us"},
            ],
        },
    ],
}


async def connect_sandbox(runtime: Runtime, simulator_url: str) -> ProviderConfig:
    """Make (once) the sandbox provider and demo template; register callbacks at the simulator."""
    async with runtime.sessions() as session:
        workspace = await ensure_default_workspace(session, runtime.clock)
        config = await session.scalar(
            select(ProviderConfig).where(
                ProviderConfig.workspace_id == workspace.id,
                ProviderConfig.nickname == SANDBOX_NICKNAME,
            )
        )
        if config is None:
            body = ProviderCreate(
                nickname=SANDBOX_NICKNAME,
                kind="sandbox",
                mobile_number=SANDBOX_NUMBER,
                endpoint_url=simulator_url.rstrip("/") + "/api/v5/whatsapp//outbound/clevertap/",
                auto_reply=AutoReply(
                    enabled=True, text="Thanks for writing! This is an auto-reply."
                ),
            )
            config = await create_provider(session, runtime, workspace.id, body)
        if await find_template(session, config.id, "welcome", "en") is None:
            await create_template(
                session,
                runtime.clock,
                workspace.id,
                config.id,
                TemplateIn.model_validate(DEMO_TEMPLATE),
            )
        await session.commit()
    urls = callback_urls(runtime, config)
    async with aiohttp.ClientSession() as http:
        await http.post(
            simulator_url.rstrip("/") + "/_sim/config",
            json={
                "numbers": {
                    config.mobile_number: {
                        "delivery_url": urls.delivery_url,
                        "inbound_url": urls.inbound_url,
                    }
                }
            },
        )
    return config


def with_simulator(port: int) -> Callable[[Runtime], Awaitable[Callable[[], Awaitable[None]]]]:
    """A background starter for the app: the simulator in the server's loop, connected."""

    async def start(runtime: Runtime) -> Callable[[], Awaitable[None]]:
        from waconnect.simulator.app import SimulatorServer
        from waconnect.simulator.options import SimulatorOptions

        server = SimulatorServer(SimulatorOptions(reply_ratio=0.2, seed=None), port=port)
        await server.start()
        config = await connect_sandbox(runtime, server.url)
        log.info("simulator on %s, provider %s (%s)", server.url, config.id, config.nickname)
        return server.stop

    return start
