"""Import from the simulator's catalogue: msg91's template list (B4) and the generic paged GET
(A6). Every listed template is reported; one that breaks a rule is rejected, not dropped."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.templates.builders import body, buttons, quick_reply
from tests.templates.helpers import PROVIDERS, error_of, make_provider
from waconnect.simulator import SimulatorOptions, SimulatorServer

AUTHKEY = "sim-authkey-123456"
NUMBER = "918000000001"
StartSimulator = Callable[..., Awaitable[SimulatorServer]]


def listed(
    name: str, language: str, status: str, id_: str, *components: Any, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "language": language,
        "status": status,
        "category": extra.pop("category", "MARKETING"),
        "id": id_,
        "components": list(components),
        **extra,
    }


CATALOGUE = [
    listed(
        "diwali_offer",
        "en",
        "APPROVED",
        "101",
        body("Hi {{1}}, 20% off ends tonight.", "Asha"),
        buttons(quick_reply("Not now")),
    ),
    listed("diwali_offer", "hi", "approved", "102", body("नमस्ते {{1}}, आज छूट है।", "Asha")),
    listed("welcome", "en", "PENDING", "103", body("Welcome to our shop!"), category="UTILITY"),
    listed("too_long", "en", "APPROVED", "104", body("x" * 1025), category="UTILITY"),
]
REJECTED = {
    "name": "too_long",
    "language": "en",
    "outcome": "rejected",
    "template_id": None,
    "status": "APPROVED",
    "type": None,
    "provider_template_id": "104",
    "violations": {"body": "1025 characters, the limit is 1024"},
}


@pytest.fixture
async def start_simulator() -> AsyncIterator[StartSimulator]:
    servers: list[SimulatorServer] = []

    async def start(**options: Any) -> SimulatorServer:
        server = await SimulatorServer(SimulatorOptions(callbacks=False, **options)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


async def msg91_provider(
    client: httpx.AsyncClient, auth: dict[str, str], sim_url: str, authkey: str = AUTHKEY
) -> dict[str, Any]:
    return await make_provider(
        client,
        auth,
        kind="msg91",
        endpoint_url=f"{sim_url}/api/v5/whatsapp",
        headers={"Authkey": authkey},
        templates={"api_base": f"{sim_url}/api/v5/whatsapp"},
    )


async def run_import(
    client: httpx.AsyncClient, auth: dict[str, str], provider_id: int
) -> dict[str, Any]:
    response = await client.post(f"{PROVIDERS}/{provider_id}/templates/import", headers=auth)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def outcomes(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(r["name"], r["language"], r["outcome"]) for r in report["results"]]


async def test_msg91_import_creates_then_finds_unchanged_then_updates(
    client: httpx.AsyncClient, auth: dict[str, str], start_simulator: StartSimulator
) -> None:
    sim = await start_simulator(catalogue=CATALOGUE, authkey=AUTHKEY)
    provider = await msg91_provider(client, auth, sim.url)

    first = await run_import(client, auth, provider["id"])

    assert first["source"] == f"{sim.url}/api/v5/whatsapp/get-template-client/{NUMBER}"
    assert (first["fetched"], first["created"], first["rejected"]) == (4, 3, 1)
    assert outcomes(first) == [
        ("diwali_offer", "en", "created"),
        ("diwali_offer", "hi", "created"),
        ("welcome", "en", "created"),
        ("too_long", "en", "rejected"),
    ]
    assert first["results"][3] == REJECTED
    stored = (await client.get(f"{PROVIDERS}/{provider['id']}/templates", headers=auth)).json()
    assert [(t["id"], t["status"], t["provider_template_id"], t["type"]) for t in stored] == [
        (first["results"][0]["template_id"], "APPROVED", "101", "basic"),
        (first["results"][1]["template_id"], "APPROVED", "102", "basic"),
        (first["results"][2]["template_id"], "PENDING", "103", "basic"),
    ]
    assert stored[0]["components"] == CATALOGUE[0]["components"]

    again = await run_import(client, auth, provider["id"])
    assert (again["unchanged"], again["created"], again["updated"], again["rejected"]) == (
        3,
        0,
        0,
        1,
    )

    approved = [*CATALOGUE]
    approved[2] = {**CATALOGUE[2], "status": "APPROVED"}
    sim.simulator.set_options(sim.simulator.options.updated({"catalogue": approved}))
    third = await run_import(client, auth, provider["id"])
    assert outcomes(third)[2] == ("welcome", "en", "updated")
    assert (third["unchanged"], third["updated"]) == (2, 1)
    welcome = await client.get(
        f"/api/v1/templates/{third['results'][2]['template_id']}", headers=auth
    )
    assert welcome.json()["status"] == "APPROVED"


async def test_generic_import_reads_every_page_with_its_own_auth(
    client: httpx.AsyncClient, auth: dict[str, str], start_simulator: StartSimulator
) -> None:
    catalogue = [
        listed(f"promo_{n}", "en", "APPROVED", str(n), body(f"Offer {n} for {{{{1}}}}.", "Asha"))
        for n in range(54)
    ]
    catalogue.insert(20, CATALOGUE[3])
    sim = await start_simulator(catalogue=catalogue, basic_auth=("importer", "s3cret-pass"))
    provider = await make_provider(
        client,
        auth,
        templates={
            "url": f"{sim.url}/templates/import",
            "auth": {"type": "basic", "username": "importer", "password": "s3cret-pass"},
            "page_size": 50,
        },
    )

    report = await run_import(client, auth, provider["id"])

    assert report["source"] == f"{sim.url}/templates/import"
    assert (report["fetched"], report["created"], report["rejected"]) == (55, 54, 1)
    assert report["results"][20] == REJECTED
    assert [r["name"] for r in report["results"]] == [t["name"] for t in catalogue]


async def test_the_sandbox_imports_from_its_simulator(
    client: httpx.AsyncClient, auth: dict[str, str], start_simulator: StartSimulator
) -> None:
    sim = await start_simulator(catalogue=CATALOGUE[:1])
    provider = await make_provider(
        client, auth, kind="sandbox", endpoint_url=f"{sim.url}/api/v5/whatsapp//outbound/clevertap/"
    )

    report = await run_import(client, auth, provider["id"])

    assert outcomes(report) == [("diwali_offer", "en", "created")]


async def test_provider_errors_name_the_providers_answer(
    client: httpx.AsyncClient, auth: dict[str, str], start_simulator: StartSimulator
) -> None:
    sim = await start_simulator(catalogue=CATALOGUE, authkey=AUTHKEY)
    wrong_key = await msg91_provider(client, auth, sim.url, authkey="not-the-key-0000")
    error = error_of(
        await client.post(f"{PROVIDERS}/{wrong_key['id']}/templates/import", headers=auth),
        422,
        "provider_auth_failed",
    )
    assert error["provider_status"] == 401
    assert "Unauthorized" in error["provider_response"]
    assert "HTTP 401" in error["message"]

    missing = await make_provider(
        client, auth, nickname="no-route", templates={"url": f"{sim.url}/api/v5/whatsapp/nothing"}
    )
    error = error_of(
        await client.post(f"{PROVIDERS}/{missing['id']}/templates/import", headers=auth),
        502,
        "provider_error",
    )
    assert error["provider_status"] == 404
    assert "Route Missing" in error["message"]

    closed = await make_provider(
        client, auth, nickname="closed", templates={"url": "http://127.0.0.1:9/templates"}
    )
    error = error_of(
        await client.post(f"{PROVIDERS}/{closed['id']}/templates/import", headers=auth),
        502,
        "provider_unreachable",
    )
    assert "http://127.0.0.1:9/templates did not answer" in error["message"]

    unset = await make_provider(client, auth, nickname="unset")
    error = error_of(
        await client.post(f"{PROVIDERS}/{unset['id']}/templates/import", headers=auth),
        422,
        "import_not_configured",
    )
    assert set(error["fields"]) == {"templates.url"}
    stored = await client.get(f"{PROVIDERS}/{wrong_key['id']}/templates", headers=auth)
    assert stored.json() == []
