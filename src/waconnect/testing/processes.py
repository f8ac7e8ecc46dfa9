"""Real processes for end-to-end tests: the CLI, the server, the simulator."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli_env(settings_env: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WACONNECT_")}
    if pg := os.environ.get("WACONNECT_TEST_POSTGRES_URL"):
        env["WACONNECT_TEST_POSTGRES_URL"] = pg
    env.update(settings_env)
    return env


def run_cli(
    *args: str, env: Mapping[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "waconnect", *args],
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Process:
    """A waconnect subprocess (server, worker, simulator) with its log file."""

    args: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    base_url: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def start(self) -> Process:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "waconnect", *self.args],
            env=cli_env(self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self, path: str, timeout: float = 60) -> Process:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"process exited early:\n{self.log()}")
            try:
                if httpx.get(self.base_url + path, timeout=1).status_code < 500:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.args} not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_server(
    env: Mapping[str, str], log_dir: Path, *extra_args: str, port: int | None = None
) -> Process:
    port = port or free_port()
    server_env = dict(env)
    server_env.setdefault("WACONNECT_PUBLIC_URL", f"http://127.0.0.1:{port}")
    process = Process(
        args=["serve", "--port", str(port), *extra_args],
        env=server_env,
        log_path=log_dir / f"server-{port}.log",
        base_url=f"http://127.0.0.1:{port}",
    )
    return process.start().wait_ready("/healthz")
