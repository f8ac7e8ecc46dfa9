"""CSV import: ``waconnect profiles import FILE.csv`` and ``POST /api/v1/profiles/import``.

Every row ends created, updated, or in the error report with its line and reason.
"""

from __future__ import annotations

import asyncio
import csv
import random
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.profiles.helpers import PROFILES, assert_error, count
from waconnect.testing.processes import run_cli

SMALL = """\
cust_id,mobile,city,age,zip,joined,tags,subscription,notes
c1,+91 98123 00001,Pune,31,0411,2024-05-01,new|app,subscribed,likes tea
c2,98123 00002,Delhi,,411001,2024-05-02,,unsubscribed,
c3,12,Pune,40,411002,2024-05-03,,,bad phone
c4,+919812300004,Pune,forty,411003,2024-05-04,,,age is not a number

c5,+919812300005,Pune,22,411005,2024-05-05,,maybe,bad state
,,Pune,22,411006,2024-05-06,,,no identity or phone
c7,+919812300007,Pune,22,411007,not a date,,,bad date
c8,+919812300008,"Pune, West",23,411008,2024-05-08,a|b,,"quoted, with comma"
c1,,Mumbai,32,,,,,update of c1
c9,+919812300009,Pune,24,411009,2024-05-09,,,too,many,cells
"""
MAP = ["--map", "cust_id=identity", "--map", "mobile=phone", "--map", "zip=zip:string"]
MAP += ["--map", "tags=tags:list", "--map", "notes=-"]


def _report(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


async def _all_profiles(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
    page = (await client.get(PROFILES, params={"limit": 500}, headers=auth)).json()
    return {p["identity"]: p for p in page["items"]}


async def test_cli_import_maps_types_and_reports_every_row(
    client: httpx.AsyncClient, auth: dict[str, str], settings_env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "people.csv"
    source.write_text(SMALL)
    done = await asyncio.to_thread(
        run_cli, "profiles", "import", str(source), *MAP, env=settings_env
    )
    assert done.returncode == 0, done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    report_path = tmp_path / "people.errors.csv"
    assert summary == (
        "imported 10 rows: 3 created, 1 updated, 6 errors (1 blank lines skipped); "
        f"rejected rows in {report_path}"
    )
    by_line = {r["line"]: r for r in _report(report_path)}
    assert set(by_line) == {"4", "5", "7", "8", "9", "12"}
    assert by_line["4"]["error"] == "invalid_phone" and by_line["4"]["mobile"] == "12"
    # "age" is a number column (most of its cells are numbers): "forty" is reported.
    assert by_line["5"]["error"] == "type_clash" and "'forty'" in by_line["5"]["message"]
    assert "subscription" in by_line["7"]["message"]
    assert "neither identity nor phone" in by_line["8"]["message"]
    assert by_line["9"]["error"] == "type_clash" and "not a date" in by_line["9"]["message"]
    assert "cells" in by_line["12"]["message"]
    # The report keeps the row as read, so it can be fixed and imported again.
    assert by_line["5"]["cust_id"] == "c4" and by_line["5"]["notes"] == "age is not a number"

    people = await _all_profiles(client, auth)
    assert set(people) == {"c1", "c2", "c8"}
    c1 = people["c1"]
    assert c1["phone"] == "919812300001"
    assert c1["attributes"] == {
        "city": "Mumbai",
        "age": 32,
        "zip": "0411",
        "joined": "2024-05-01T00:00:00Z",
        "tags": ["new", "app"],
    }
    assert c1["subscription"]["state"] == "subscribed"
    assert c1["subscription"]["source"] == "import"
    assert people["c2"]["subscription"]["state"] == "unsubscribed"
    assert people["c8"]["attributes"]["city"] == "Pune, West"
    types = {
        a["name"]: a["type"] for a in (await client.get("/api/v1/attributes", headers=auth)).json()
    }
    assert types == {
        "city": "string",
        "age": "number",
        "zip": "string",
        "joined": "date",
        "tags": "list",
    }
    assert await count(client, auth, {"attribute": "tags", "op": "contains", "value": "a"}) == 1


async def test_cli_refusals_are_one_line(tmp_path: Path) -> None:
    # Refusals do not depend on the database: the default one (SQLite in the data directory).
    settings_env = {"WACONNECT_DATA_DIR": str(tmp_path / "data")}
    no_key = tmp_path / "no-key.csv"
    no_key.write_text("city,age\nPune,3\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    good = tmp_path / "good.csv"
    good.write_text("identity,age\na,3\n")
    cases = [
        ([str(tmp_path / "missing.csv")], "no such file"),
        ([str(no_key)], "identity or a phone column"),
        ([str(empty)], "empty"),
        ([str(good), "--map", "age"], "COLUMN=TARGET"),
        ([str(good), "--map", "age=age:colour"], "unknown type"),
        ([str(good), "--map", "nope=x"], "'nope'"),
        ([str(good), "--workspace", "nope"], "workspace 'nope' not found"),
    ]
    for args, says in cases:
        done = await asyncio.to_thread(run_cli, "profiles", "import", *args, env=settings_env)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
        assert says in lines[0], (args, lines)


async def _wait_job(client: httpx.AsyncClient, auth: dict[str, str], job_id: int) -> dict[str, Any]:
    for _ in range(600):
        job: dict[str, Any] = (await client.get(f"{PROFILES}/import/{job_id}", headers=auth)).json()
        if job["state"] not in ("queued", "running"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"import {job_id} did not finish: {job}")


async def test_api_upload_as_csv_body_and_as_multipart(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    lines = ["id,phone,score,name"]
    lines += [f"u{i},+9198124{i:05d},{i},Customer number {i}" for i in range(30000)]
    lines += ["bad,12,1,x", "u0,,notanumber,y"]
    body = ("\n".join(lines) + "\n").encode()
    assert len(body) > 1_000_000  # over the API's JSON limit: uploads stream with their own
    response = await client.post(
        f"{PROFILES}/import",
        params={"map": ["id=identity"], "filename": "big.csv"},
        content=body,
        headers={**auth, "Content-Type": "text/csv"},
    )
    assert response.status_code == 202, response.text
    started = response.json()
    assert started["state"] in ("queued", "running") and started["filename"] == "big.csv"
    assert started["columns"] == ["id", "phone", "score", "name"]
    assert started["map"] == ["id=identity"]
    job = await _wait_job(client, auth, started["id"])
    assert job["state"] == "done", job
    assert (job["rows"], job["created"], job["updated"], job["errors"]) == (30002, 30000, 0, 2)
    assert job["progress"] == 1.0 and job["bytes_done"] == job["bytes_total"] == len(body)
    report = await client.get(job["errors_url"], headers=auth)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(report.text.splitlines()))
    assert rows[0] == ["line", "error", "message", "id", "phone", "score", "name"]
    assert [(r[0], r[1]) for r in rows[1:]] == [("30002", "invalid_phone"), ("30003", "type_clash")]
    assert rows[2][3:] == ["u0", "", "notanumber", "y"]

    upload = await client.post(
        f"{PROFILES}/import",
        files={"file": ("more.csv", b"identity,score\nu1,7\nnew,8\n", "text/csv")},
        headers=auth,
    )
    assert upload.status_code == 202, upload.text
    job = await _wait_job(client, auth, upload.json()["id"])
    assert (job["state"], job["filename"], job["created"], job["updated"]) == (
        "done",
        "more.csv",
        1,
        1,
    )
    assert await count(client, auth, {"attribute": "score", "op": "ge", "value": 7}) == 29995


async def test_api_upload_refusals(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: object
) -> None:
    from tests.conftest import new_key
    from waconnect.runtime import Runtime

    assert isinstance(runtime, Runtime)
    url = f"{PROFILES}/import"
    csv_headers = {**auth, "Content-Type": "text/csv"}
    assert_error(await client.post(url, json={"a": 1}, headers=auth), 415, says="text/csv")
    assert_error(await client.post(url, content=b"", headers=csv_headers), 422, says="empty")
    assert_error(
        await client.post(url, content=b"city\nPune\n", headers=csv_headers), 422, says="phone"
    )
    assert_error(
        await client.post(url, params={"map": "x"}, content=b"identity\na\n", headers=csv_headers),
        422,
        says="COLUMN=TARGET",
    )
    assert_error(await client.post(url, files={"other": ("a.csv", b"x")}, headers=auth), 422)
    assert_error(await client.get(f"{url}/999", headers=auth), 404)
    done = await client.post(url, content=b"identity\na\n", headers=csv_headers)
    other = {"Authorization": f"Bearer {await new_key(runtime, 'other')}"}
    assert_error(await client.get(f"{url}/{done.json()['id']}", headers=other), 404)
    await _wait_job(client, auth, done.json()["id"])


def _write_big(path: Path, rows: int, bad_every: int) -> int:
    """``rows`` profiles, every ``bad_every``-th one broken in one of three ways."""
    rng = random.Random(7)
    bad = 0
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["identity", "phone", "city", "age", "signup", "tags"])
        for i in range(rows):
            row = [f"c{i}", f"+9197{i:08d}", rng.choice(["Pune", "Delhi"]), str(18 + i % 60)]
            row += [f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}", "a|b"]
            if i % bad_every == bad_every - 1:
                bad += 1
                kind = bad % 3
                if kind == 0:
                    row[1] = "12345"
                elif kind == 1:
                    row[3] = "old"
                else:
                    row[4] = "someday"
            writer.writerow(row)
    return bad


@pytest.mark.slow
async def test_cli_imports_100000_rows_with_its_error_report(
    client: httpx.AsyncClient, auth: dict[str, str], settings_env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "big.csv"
    bad = await asyncio.to_thread(_write_big, source, 100_000, 97)
    done = await asyncio.to_thread(
        run_cli, "profiles", "import", str(source), env=settings_env, timeout=600
    )
    assert done.returncode == 0, done.stderr
    good = 100_000 - bad
    assert done.stdout.strip().endswith(
        f"imported 100000 rows: {good} created, 0 updated, {bad} errors; "
        f"rejected rows in {tmp_path / 'big.errors.csv'}"
    )
    report = _report(tmp_path / "big.errors.csv")
    assert len(report) == bad
    assert {r["error"] for r in report} == {"invalid_phone", "type_clash"}
    # Line numbers point at the file's lines: header is line 1, row i is line i + 2.
    assert all(r["identity"] == f"c{int(r['line']) - 2}" for r in report)
    assert await count(client, auth, {"attribute": "tags", "op": "contains", "value": "a"}) == good
    # Importing the same file again updates, and creates nothing.
    again = await asyncio.to_thread(
        run_cli, "profiles", "import", str(source), env=settings_env, timeout=600
    )
    assert f"0 created, {good} updated, {bad} errors" in again.stdout
