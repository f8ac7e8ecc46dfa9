"""End-to-end stacks of real processes on loopback: the simulator, the server, workers."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from waconnect.testing.processes import Process, free_port, run_cli, start_server

DEMO_TEMPLATE: dict[str, Any] = {
    "name": "order_update",
    "language": "en",
    "category": "UTILITY",
    "status": "APPROVED",
    "components": [
        {
            "type": "BODY",
            "text": "Hi {{1}}, order {{2}} is on its way.",
            "example": {"body_text": [["Asha", "A-1"]]},
        },
        {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Thanks"}]},
    ],
}


def start_simulator(log_dir: Path, *args: str) -> Process:
    port = free_port()
    process = Process(
        args=["simulator", "--port", str(port), *args],
        env={},
        log_path=log_dir / f"simulator-{port}.log",
        base_url=f"http://127.0.0.1:{port}",
    )
    return process.start().wait_ready("/_sim/stats")


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll a condition with a deadline: tests wait for outcomes, never for fixed times."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Stack:
    """A server (with or without its worker) and a simulator, wired together."""

    env: dict[str, str]
    log_dir: Path
    simulator: Process
    server: Process | None = None
    workers: list[Process] = field(default_factory=list)
    key: str = ""

    @property
    def api(self) -> httpx.Client:
        assert self.server is not None
        return httpx.Client(
            base_url=self.server.base_url + "/api/v1",
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=60,
        )

    def sim(self) -> httpx.Client:
        return httpx.Client(base_url=self.simulator.base_url, timeout=30)

    def start_server(self, *args: str, port: int | None = None) -> Process:
        self.server = start_server(self.env, self.log_dir, *args, port=port)
        return self.server

    def start_worker(self) -> Process:
        process = Process(
            args=["worker"],
            env=dict(self.env),
            log_path=self.log_dir / f"worker-{len(self.workers)}.log",
        ).start()
        self.workers.append(process)
        return process

    def create_key(self) -> str:
        result = run_cli("keys", "create", env=self.env)
        assert result.returncode == 0, result.stderr
        self.key = result.stdout.strip()
        return self.key

    def add_provider(
        self, kind: str = "sandbox", max_concurrency: int = 100, **extra: Any
    ) -> dict[str, Any]:
        sim = self.simulator.base_url
        body: dict[str, Any] = {
            "nickname": f"{kind}-{max_concurrency}-{len(extra)}",
            "kind": kind,
            "mobile_number": "918000000001",
            "max_concurrency": max_concurrency,
        }
        if kind in ("sandbox", "generic"):
            body["endpoint_url"] = sim + "/api/v5/whatsapp//outbound/clevertap/"
        else:
            body["endpoint_url"] = sim + "/api/v5/whatsapp"
            body["headers"] = {"Authkey": "sim-authkey-123456"}
        body.update(extra)
        with self.api as api:
            created = api.post("/providers", json=body)
            assert created.status_code == 201, created.text
            provider = created.json()
            template = api.post(f"/providers/{provider['id']}/templates", json=DEMO_TEMPLATE)
            assert template.status_code == 201, template.text
        with self.sim() as sim_client:
            configured = sim_client.post(
                "/_sim/config",
                json={
                    "numbers": {
                        provider["mobile_number"]: {
                            "delivery_url": provider["callbacks"]["delivery_url"],
                            "inbound_url": provider["callbacks"]["inbound_url"],
                        }
                    }
                },
            )
            assert configured.status_code == 200, configured.text
        return provider

    def send(self, provider_id: int, count: int, first_phone: int = 919800000000) -> list[int]:
        ids: list[int] = []
        with self.api as api:
            for start in range(0, count, 1000):
                batch = [
                    {
                        "provider_id": provider_id,
                        "to": str(first_phone + n),
                        "template": {
                            "name": "order_update",
                            "language": {"code": "en"},
                            "components": [
                                {
                                    "type": "body",
                                    "parameters": [
                                        {"type": "text", "text": f"C{n}"},
                                        {"type": "text", "text": f"A-{n}"},
                                    ],
                                }
                            ],
                        },
                    }
                    for n in range(start, min(start + 1000, count))
                ]
                answer = api.post("/messages/batch", json={"messages": batch})
                assert answer.status_code == 202, answer.text
                body = answer.json()
                assert body["rejected"] == 0, body
                ids.extend(item["id"] for item in body["results"])
        return ids

    def counts(self, provider_id: int | None = None) -> dict[str, int]:
        with self.api as api:
            params = {"provider_id": provider_id} if provider_id else {}
            answer = api.get("/messages/counts", params=params)
            assert answer.status_code == 200, answer.text
            return dict(answer.json())

    def sim_stats(self) -> dict[str, Any]:
        with self.sim() as sim_client:
            return dict(sim_client.get("/_sim/stats").json())

    def sim_config(self, **options: Any) -> None:
        with self.sim() as sim_client:
            answer = sim_client.post("/_sim/config", json={"options": options})
            assert answer.status_code == 200, answer.text

    def stop(self) -> None:
        for process in [*self.workers, self.server, self.simulator]:
            if process is not None:
                process.stop()


def stack_env(settings_env: Mapping[str, str], **extra: str) -> dict[str, str]:
    env = dict(settings_env)
    env.pop("WACONNECT_TEST_CONTROLS", None)
    env.update(extra)
    return env
