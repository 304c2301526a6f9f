"""A local Retell server: the REST API in memory, with call lifecycles, limits and faults.

For development without placing real calls, for integration tests over real sockets, and as
the benchmark server. Any Retell client works against it, the official SDK included::

    async with Emulator(EmulatorConfig(api_key="key_test")) as emu:
        client = AsyncRetell(api_key="key_test", base_url=emu.base_url)
"""

from .app import create_app
from .clock import ManualClock
from .config import EmulatorConfig
from .faults import Fault, FaultInjector
from .server import Emulator, serve
from .state import EmulatorState
from .webhooks import DeliveryAttempt, WebhookDispatcher

__all__ = [
    "DeliveryAttempt",
    "Emulator",
    "EmulatorConfig",
    "EmulatorState",
    "Fault",
    "FaultInjector",
    "ManualClock",
    "WebhookDispatcher",
    "create_app",
    "serve",
]
