"""Provider adapters: the wire format of each provider kind, as pure functions.

Adding a provider is one module with an ``ADAPTER`` instance, plus its line below.
"""

from __future__ import annotations

from waconnect.providers.adapters import generic, msg91, sandbox
from waconnect.providers.adapters.base import (
    CallbackParseError,
    DeliveryReport,
    HttpRequest,
    InboundMessage,
    OutboundItem,
    ProviderAdapter,
    ProviderEndpoint,
    SendResult,
    SessionSend,
    TemplateSend,
    UnsupportedContent,
)

__all__ = [
    "ADAPTER_KINDS",
    "UNVERIFIED",
    "CallbackParseError",
    "DeliveryReport",
    "HttpRequest",
    "InboundMessage",
    "OutboundItem",
    "ProviderAdapter",
    "ProviderEndpoint",
    "SendResult",
    "SessionSend",
    "TemplateSend",
    "UnsupportedContent",
    "get_adapter",
]

_ADAPTERS: dict[str, ProviderAdapter] = {
    adapter.kind: adapter for adapter in (generic.ADAPTER, msg91.ADAPTER, sandbox.ADAPTER)
}

ADAPTER_KINDS: tuple[str, ...] = tuple(_ADAPTERS)

# Wire shapes taken from samples or third-party code rather than a provider's own document;
# the README prints them so each can be checked on a real number.
UNVERIFIED: tuple[str, ...] = (*generic.UNVERIFIED, *msg91.UNVERIFIED)


def get_adapter(kind: str) -> ProviderAdapter:
    """The adapter for a provider kind; ``KeyError`` names the known kinds."""
    try:
        return _ADAPTERS[kind]
    except KeyError:
        raise KeyError(
            f"unknown provider kind {kind!r}; known: {', '.join(ADAPTER_KINDS)}"
        ) from None
