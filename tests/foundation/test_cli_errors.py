"""CLI failures: a non-zero exit and one clear line on stderr, never a traceback."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.conftest import TEST_SECRET
from waconnect.testing.processes import free_port, run_cli


def assert_one_line_error(result: subprocess.CompletedProcess[str], says: str) -> None:
    shown = f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.returncode != 0, shown
    assert "Traceback" not in result.stderr + result.stdout, shown
    assert result.stdout == "", shown
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, shown
    assert lines[0].startswith("error: "), shown
    assert says in lines[0], shown


def run_all(
    commands: list[tuple[str, ...]], env: Mapping[str, str]
) -> list[subprocess.CompletedProcess[str]]:
    """Run independent CLI commands side by side (each is a fresh Python process)."""
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return list(pool.map(lambda args: run_cli(*args, env=env), commands))


def test_cli_errors_on_a_working_database(settings_env: dict[str, str]) -> None:
    nope, revoke, huge = run_all(
        [
            ("keys", "create", "--workspace", "nope"),
            ("keys", "revoke", "999"),
            ("keys", "revoke", "99999999999999999999"),  # past 64 bits: used to be a traceback
        ],
        settings_env,
    )
    assert_one_line_error(nope, "workspace 'nope' not found")
    assert_one_line_error(revoke, "API key not found")
    assert_one_line_error(huge, "API key not found")


def test_cli_errors_on_an_unusable_database(tmp_path: Path) -> None:
    def env(url: str) -> dict[str, str]:
        return {
            "WACONNECT_DATA_DIR": str(tmp_path / "data"),
            "WACONNECT_SECRET_KEY": TEST_SECRET,
            "WACONNECT_DATABASE_URL": url,
        }

    refused = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/w"  # nothing listens
    missing_dir = f"sqlite+aiosqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'w.db'}"
    cases: list[tuple[tuple[str, ...], str, str]] = [
        (("keys", "create"), refused, "cannot reach the database"),
        (("db", "upgrade"), missing_dir, "cannot open the SQLite database"),
        (("keys", "list"), "mysql://someone@127.0.0.1/waconnect", "driver is not installed"),
        (("workspaces", "create", "acme"), "not a database url", "database"),
    ]
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        futures = [(pool.submit(run_cli, *args, env=env(url)), says) for args, url, says in cases]
    for future, says in futures:
        assert_one_line_error(future.result(), says)


def test_serve_with_an_unreachable_database_fails_in_one_line(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/waconnect"
    result = run_cli(
        "serve",
        "--port",
        str(free_port()),
        env={
            "WACONNECT_DATA_DIR": str(tmp_path / "data"),
            "WACONNECT_SECRET_KEY": TEST_SECRET,
            "WACONNECT_DATABASE_URL": url,
        },
        timeout=30,
    )
    assert_one_line_error(result, "cannot reach the database")
