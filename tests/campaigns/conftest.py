from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from waconnect.testing.stack import Stack, stack_env, start_simulator


@pytest.fixture
def make_stack(settings_env: dict[str, str], tmp_path: Path) -> Iterator:
    """Build a Stack: a simulator subprocess (with the given flags) and, on demand, the server."""
    stacks: list[Stack] = []

    def make(*simulator_args: str, **env: str) -> Stack:
        logs = tmp_path / "logs"
        logs.mkdir(exist_ok=True)
        simulator = start_simulator(logs, *simulator_args)
        stack = Stack(env=stack_env(settings_env, **env), log_dir=logs, simulator=simulator)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop()
