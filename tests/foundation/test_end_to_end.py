"""A real ``waconnect serve`` and the real CLI, on SQLite and on PostgreSQL: key from the CLI,
provider config over HTTP, secrets masked and not in the SQLite file, workspaces and revocation."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.foundation.helpers import PROVIDERS, assert_error
from waconnect.testing.processes import Process, run_cli, start_server

PASSWORD = "e2e-basic-password-Q7r9"
AUTHKEY = "e2e-msg91-authkey-4k2P"
NICKNAME = "e2e-visible-nickname"


@pytest.fixture
def server(settings_env: dict[str, str], tmp_path: Path) -> Iterator[Process]:
    process = start_server(settings_env, tmp_path)
    yield process
    process.stop()


def cli(*commands: tuple[str, ...], env: dict[str, str]) -> list[str]:
    """Run CLI commands side by side (real processes); each must succeed. Their stdouts."""
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        results = list(pool.map(lambda args: run_cli(*args, env=env), commands))
    for result in results:
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
    return [result.stdout for result in results]


def sqlite_bytes(db_url: str) -> bytes:
    """The database file and its write-ahead log, as they are on disk."""
    path = Path(db_url.removeprefix("sqlite+aiosqlite:///"))
    assert path.exists()
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


@pytest.fixture
def clients(server: Process) -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def client_for(server: Process, key: str, clients: ExitStack) -> httpx.Client:
    return clients.enter_context(
        httpx.Client(
            base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
    )


def test_serve_cli_key_and_provider_config(
    server: Process, settings_env: dict[str, str], db_url: str, clients: ExitStack
) -> None:
    # KEY=$(waconnect keys create): the key alone on stdout. (And, meanwhile, a workspace.)
    stdout, made = cli(("keys", "create"), ("workspaces", "create", "acme"), env=settings_env)
    key = stdout.strip()
    assert stdout == key + "\n"
    assert key.startswith("wac_") and " " not in key
    assert "acme" in made
    api = client_for(server, key, clients)

    created = api.post(
        PROVIDERS,
        json={
            "nickname": NICKNAME,
            "kind": "generic",
            "mobile_number": "+91 88895 00122",
            "endpoint_url": "https://api.example.com/whatsapp",
            "auth": {"type": "basic", "username": "acme", "password": PASSWORD},
            "headers": {"Authkey": AUTHKEY},
        },
    )
    assert created.status_code == 201, created.text
    provider_id = created.json()["id"]

    shown = api.get(f"{PROVIDERS}/{provider_id}").json()
    assert shown["mobile_number"] == "918889500122"
    assert shown["auth"] == {"type": "basic", "username": "acme", "password": "••••Q7r9"}
    assert shown["headers"]["Authkey"] == "••••4k2P"
    assert shown["headers"]["Content-Type"] == "application/json"
    callbacks = shown["callbacks"]
    prefix = f"{server.base_url}/callbacks/{provider_id}/"
    assert callbacks["inbound_url"].startswith(prefix)
    assert callbacks["inbound_url"].endswith("/inbound")
    assert callbacks["delivery_url"].startswith(prefix)
    assert callbacks["delivery_url"].endswith("/delivery")
    assert PASSWORD not in api.get(PROVIDERS).text

    if db_url.startswith("sqlite"):
        on_disk = sqlite_bytes(db_url)
        assert NICKNAME.encode() in on_disk  # the check does see what was written
        assert PASSWORD.encode() not in on_disk
        assert AUTHKEY.encode() not in on_disk

    # A chunked body just over 1 MB, read to its end by the server, is refused with a 413.
    def chunks() -> Iterator[bytes]:
        yield from [b" " * 100_000] * 10
        yield b"{}"

    assert_error(
        api.post(PROVIDERS, content=chunks(), headers={"Content-Type": "application/json"}),
        413,
        "payload_too_large",
    )
    assert_error(api.get("/nope"), 404, "not_found")

    # Keys list (CLI): prefixes, never the key. A key for the other workspace from the CLI.
    listing, other_key = cli(
        ("keys", "list"), ("keys", "create", "--workspace", "acme"), env=settings_env
    )
    assert key[:12] in listing
    assert key not in listing
    other_key = other_key.strip()
    other = client_for(server, other_key, clients)
    assert other.get(PROVIDERS).json() == []
    assert other.get("/api/v1/workspace").json()["name"] == "acme"
    url = f"{PROVIDERS}/{provider_id}"
    assert_error(other.get(url), 404, "not_found")
    assert_error(other.patch(url, json={"nickname": "x"}), 404, "not_found")
    assert_error(other.post(f"{url}/rotate-token", json={}), 404, "not_found")
    assert_error(other.delete(url), 404, "not_found")

    # Revoked from the CLI: 401 from then on; the other key is untouched.
    (own_key,) = other.get("/api/v1/keys").json()
    assert other_key.startswith(own_key["prefix"])
    cli(("keys", "revoke", str(own_key["id"]), "--workspace", "acme"), env=settings_env)
    assert_error(other.get(PROVIDERS), 401, "unauthorized")
    assert api.get(url).status_code == 200

    # Revoked through the API: the same.
    spare = api.post("/api/v1/keys", json={"label": "spare"}).json()
    spare_api = client_for(server, spare["key"], clients)
    assert spare_api.get(PROVIDERS).status_code == 200
    assert api.delete(f"/api/v1/keys/{spare['id']}").status_code == 200
    assert_error(spare_api.get(PROVIDERS), 401, "unauthorized")
    assert api.get("/healthz").json()["status"] == "ok"
