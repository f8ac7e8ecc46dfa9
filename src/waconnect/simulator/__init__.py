"""A stand-in for MSG91 on loopback: it speaks MSG91's wire formats and calls back.

- ``POST /api/v5/whatsapp//outbound/clevertap/`` (and single slash): the generic contract.
- ``POST /api/v5/whatsapp/whatsapp-outbound-message/bulk/`` and ``.../whatsapp-outbound-message/``:
  MSG91's native sends; ``GET /api/v5/whatsapp/get-template-client/{number}``; ``GET
  /templates/import``.
- ``/_sim/config``, ``/_sim/stats``, ``/_sim/reset``, ``/_sim/messages``: control and counters.
"""

from waconnect.simulator.app import SimulatorServer, build_app, run, serve
from waconnect.simulator.core import Simulator
from waconnect.simulator.options import CallbackTarget, SimulatorOptions
from waconnect.simulator.responses import SIMULATOR

__all__ = [
    "SIMULATOR",
    "CallbackTarget",
    "Simulator",
    "SimulatorOptions",
    "SimulatorServer",
    "build_app",
    "run",
    "serve",
]
