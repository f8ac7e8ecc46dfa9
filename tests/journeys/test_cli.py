"""`waconnect journeys create|publish|pause|show` as a subprocess, with YAML definitions."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import typer
import yaml

from tests.journeys.helpers import abandoned_cart, add_provider
from waconnect.journeys.cli import read_definition
from waconnect.testing.processes import run_cli

pytestmark = pytest.mark.slow


async def test_journeys_from_yaml_through_the_cli(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    settings_env: dict[str, str],
    tmp_path: Path,
    db_url: str,
) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite only (test budget): the CLI calls the same services as the API")
    await add_provider(client, auth)
    bad = abandoned_cart()
    del bad["nodes"]["bought"]["exits"]["no"]
    bad_file = tmp_path / "bad.yaml"
    bad_file.write_text(yaml.safe_dump(bad))
    refused = run_cli("journeys", "create", str(bad_file), env=settings_env)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1
    assert "nodes.bought.exits.no" in refused.stderr and "goes nowhere" in refused.stderr

    good = tmp_path / "cart.yaml"
    good.write_text(yaml.safe_dump(abandoned_cart()))
    created = run_cli("journeys", "create", str(good), "--publish", env=settings_env)
    assert created.returncode == 0, created.stderr
    assert "created (live, version 1)" in created.stdout
    journey_id = created.stdout.split()[1]
    again = run_cli("journeys", "create", str(good), env=settings_env)
    assert again.returncode == 1 and "--update" in again.stderr

    shown = run_cli("journeys", "show", journey_id, "--json", env=settings_env)
    assert shown.returncode == 0, shown.stderr
    out = json.loads(shown.stdout)
    assert out["status"] == "live" and set(out["definition"]["nodes"]) >= {"wait_1h", "bought"}
    paused = run_cli("journeys", "pause", journey_id, env=settings_env)
    assert paused.returncode == 0 and "(paused)" in paused.stdout
    updated = run_cli("journeys", "create", str(good), "--update", env=settings_env)
    assert updated.returncode == 0, updated.stderr
    published = run_cli("journeys", "publish", journey_id, env=settings_env)
    assert published.returncode == 0 and "version 2 (paused)" in published.stdout
    missing = run_cli("journeys", "pause", "999", env=settings_env)
    assert missing.returncode == 1 and "journey 999" in missing.stderr
    api = await client.get(f"/api/v1/journeys/{journey_id}", headers=auth)
    assert api.json()["versions"] == 2


def test_a_file_that_is_not_yaml_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nnodes: [unclosed\n")
    with pytest.raises(typer.Exit) as exited:
        read_definition(broken)
    assert exited.value.exit_code == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ") and "broken.yaml" in line, line
