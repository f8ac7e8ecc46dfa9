"""The built-in simulator: the generic contract's wire format under its own kind.

A sandbox provider config points ``endpoint_url`` at the simulator on loopback, so everything
— sends, reports, replies — runs without a real account, through the same code as production.
"""

from __future__ import annotations

from waconnect.providers.adapters.generic import GenericAdapter

__all__ = ["ADAPTER", "SandboxAdapter"]


class SandboxAdapter(GenericAdapter):
    """Identical to :class:`GenericAdapter`; only the kind (and so its messages) differs."""

    kind: str = "sandbox"


ADAPTER = SandboxAdapter()
