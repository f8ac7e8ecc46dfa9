"""``waconnect users``: create (typed, generated, or only when there is none), list, and a new
password that ends the user's sessions; mistakes are one clear line."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from waconnect.testing.processes import run_cli


# The command's database work is the dashboard's users service, which the page tests run on
# both databases; this test is about the command line (seven process starts), so SQLite only.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_users_create_list_and_set_password(settings_env: dict[str, str]) -> None:
    env = settings_env
    first = run_cli(
        "users", "create", "--email", "Admin@Example.com", "--generate", "--if-no-users", env=env
    )
    assert first.returncode == 0, first.stderr
    password = first.stdout.strip()
    assert len(password) >= 16 and "\n" not in password  # alone on stdout, for scripts
    assert "created user admin@example.com in workspace default" in first.stderr

    with ThreadPoolExecutor(max_workers=4) as pool:
        again, duplicate, short, elsewhere = pool.map(
            lambda args: run_cli(*args, env=env),
            [
                ("users", "create", "--email", "x@example.com", "--generate", "--if-no-users"),
                ("users", "create", "--email", "ADMIN@example.com", "--password", "long enough pw"),
                ("users", "create", "--email", "short@example.com", "--password", "short"),
                (
                    "users",
                    "create",
                    "--email",
                    "x@example.com",
                    "--workspace",
                    "nope",
                    "--generate",
                ),
            ],
        )
    assert again.returncode == 0 and again.stdout == "", (
        again.stderr
    )  # nothing made, nothing printed
    assert "a user exists already" in again.stderr
    for failed, says in (
        (duplicate, "a user with the email 'admin@example.com' exists already"),
        (short, "password: must be 8 to 1000 characters long"),
        (elsewhere, "workspace 'nope' not found"),
    ):
        assert failed.returncode == 1
        assert failed.stderr.strip() == f"error: {says}", failed.stderr

    with ThreadPoolExecutor(max_workers=2) as pool:
        listed, reset = pool.map(
            lambda args: run_cli(*args, env=env),
            [
                ("users", "list"),
                (
                    "users",
                    "set-password",
                    "--email",
                    "admin@example.com",
                    "--password",
                    "a new password",
                ),
            ],
        )
    assert listed.returncode == 0 and "admin@example.com\tlast login never" in listed.stdout
    assert reset.returncode == 0 and "new password set for admin@example.com" in reset.stderr
