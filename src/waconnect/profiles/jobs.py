"""CSV imports through the API: the upload streams to a file, a job imports it in the
background, and its progress (and rejected rows) can be read from any API node.

The upload is ``Content-Type: text/csv`` (the body is the file) or ``multipart/form-data``
with a ``file`` field; either streams to disk, never into memory. The import runs in the
process that received the upload; its progress and rejected rows are written to the database
batch by batch, so any node can answer ``GET .../import/{id}``. A job whose process died stops
beating and reads as ``interrupted`` (import the file again: rows upsert, nothing doubles).
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, cast

from fastapi import Request
from sqlalchemy import select, update
from sqlalchemy.schema import Table
from starlette.datastructures import UploadFile

from waconnect.db.base import is_storable_id
from waconnect.profiles.csv_import import (
    ImportCounts,
    ImportHooks,
    ImportProblem,
    RejectedRow,
    import_csv,
    parse_mapping,
    plan_columns,
)
from waconnect.profiles.models import ImportJob, ImportRowError
from waconnect.profiles.schemas import ImportJobOut
from waconnect.runtime import Runtime
from waconnect.web.errors import ApiError, invalid, not_found

log = logging.getLogger("waconnect.profiles")

# Uploads bypass the API's 1 MB body limit (web/limits.py) and stream here with their own.
UPLOAD_LIMIT = 2 * 1024**3
CHUNK = 1024 * 1024
# Progress is written after every batch; a job silent this long has lost its process.
STALE_AFTER = timedelta(minutes=2)
JOBS = cast(Table, ImportJob.__table__)
ROW_ERRORS = cast(Table, ImportRowError.__table__)


def _wall_now() -> datetime:
    # A heartbeat is a safety timer: real time, not the business clock (design.md, "Time").
    return datetime.now(UTC)


def _folder(runtime: Runtime) -> Path:
    folder = runtime.settings.data_dir / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def receive_upload(
    request: Request, runtime: Runtime, workspace_id: int, map_items: list[str], filename: str
) -> ImportJob:
    """Store the upload, check its header and map, and start the job."""
    try:
        mapping = parse_mapping(map_items)
    except ImportProblem as exc:
        raise invalid({"map": str(exc)}) from None
    path = _folder(runtime) / f"upload-{uuid.uuid4().hex}.csv"
    try:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            filename = await _save_multipart(request, path) or filename
        elif kind == "text/csv":
            await _save_stream(request.stream(), path)
        else:
            raise ApiError(
                415,
                "unsupported_media_type",
                "send the CSV file as the body with Content-Type: text/csv, or as the field "
                "'file' of multipart/form-data",
            )
        header = _check_header(path, mapping)
        job = await _create_job(runtime, workspace_id, path, filename, map_items, header)
    except BaseException:
        _discard(path)
        raise
    task = asyncio.create_task(run_job(runtime, job.id, workspace_id, path, mapping))
    tasks: set[asyncio.Task[None]] = runtime.extras.setdefault("profile_imports", set())  # type: ignore[assignment]
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return job


async def _save_stream(chunks: AsyncIterator[bytes], path: Path) -> None:
    size = 0
    with path.open("wb") as out:
        async for chunk in chunks:
            size += len(chunk)
            if size > UPLOAD_LIMIT:
                raise _too_big()
            out.write(chunk)


async def _save_multipart(request: Request, path: Path) -> str | None:
    # Starlette spools file parts to disk past 1 MB: memory stays bounded.
    form = await request.form(max_files=1, max_fields=20)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise invalid({"file": "send the CSV as the multipart field 'file'"})
    try:
        await asyncio.to_thread(_copy_limited, upload.file, path)
        return upload.filename
    finally:
        await form.close()


def _copy_limited(source: BinaryIO, path: Path) -> None:
    with path.open("wb") as out:
        copied = 0
        while chunk := source.read(CHUNK):
            copied += len(chunk)
            if copied > UPLOAD_LIMIT:
                raise _too_big()
            out.write(chunk)


def _size(path: Path) -> int:
    return path.stat().st_size


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def _too_big() -> ApiError:
    return ApiError(
        413, "payload_too_large", f"an import is at most {UPLOAD_LIMIT // 1024**3} GB; split it"
    )


def _check_header(path: Path, mapping: dict[str, Any]) -> list[str]:
    """Refuse at once what could never import (no header, a map naming a missing column)."""
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        try:
            header = next(csv.reader(handle), None)
        except csv.Error as exc:
            raise invalid({"file": f"the header row cannot be read as CSV: {exc}"}) from None
    if not header:
        raise invalid({"file": "the upload is empty: a CSV import needs a header row"})
    try:
        plan_columns(header, mapping)
    except ImportProblem as exc:
        raise invalid({"file": str(exc)}) from None
    return [name.strip() for name in header]


async def _create_job(
    runtime: Runtime,
    workspace_id: int,
    path: Path,
    filename: str,
    map_items: list[str],
    header: list[str],
) -> ImportJob:
    async with runtime.writer() as session:
        job = ImportJob(
            workspace_id=workspace_id,
            state="queued",
            filename=filename[:300] or "upload.csv",
            mapping={"map": map_items, "header": header},
            bytes_total=_size(path),
            bytes_done=0,
            rows=0,
            created=0,
            updated=0,
            errors=0,
            created_at=runtime.clock.now(),
            heartbeat_at=_wall_now(),
        )
        session.add(job)
        await session.commit()
        return job


async def run_job(
    runtime: Runtime, job_id: int, workspace_id: int, path: Path, mapping: dict[str, Any]
) -> None:
    """Import the stored upload; the job ends done or failed with a reason, never silent."""
    await _set(runtime, job_id, state="running")
    try:
        with (
            path.open("rb") as raw,
            io.TextIOWrapper(
                raw, encoding="utf-8-sig", errors="surrogateescape", newline=""
            ) as text,
        ):

            async def rejected(rows: list[RejectedRow]) -> None:
                await _add_errors(runtime, job_id, rows)

            async def progress(counts: ImportCounts) -> None:
                await _set(runtime, job_id, bytes_done=raw.tell(), **_counts(counts))

            hooks = ImportHooks(rejected, progress)
            counts = await import_csv(runtime, workspace_id, text, mapping, hooks)
        await _finish(runtime, job_id, "done", None, bytes_done=_size(path), **_counts(counts))
    except ImportProblem as exc:
        await _finish(runtime, job_id, "failed", str(exc))
    except asyncio.CancelledError:
        await _finish(runtime, job_id, "failed", "the server stopped during the import")
        raise
    except Exception as exc:
        log.exception("profile import %s failed", job_id)
        await _finish(runtime, job_id, "failed", f"the import stopped: {exc}")
    finally:
        _discard(path)


def _counts(counts: ImportCounts) -> dict[str, int]:
    return {
        "rows": counts.rows,
        "created": counts.created,
        "updated": counts.updated,
        "errors": counts.errors,
    }


async def _set(runtime: Runtime, job_id: int, **values: Any) -> None:
    async with runtime.writer() as session:
        await session.execute(
            update(JOBS).where(JOBS.c.id == job_id).values(heartbeat_at=_wall_now(), **values)
        )
        await session.commit()


async def _finish(
    runtime: Runtime, job_id: int, state: str, error: str | None, **values: Any
) -> None:
    await _set(runtime, job_id, state=state, error=error, finished_at=runtime.clock.now(), **values)


async def _add_errors(runtime: Runtime, job_id: int, rows: list[RejectedRow]) -> None:
    async with runtime.writer() as session:
        await session.execute(
            ROW_ERRORS.insert(),
            [
                {
                    "job_id": job_id,
                    "line": row.line,
                    "code": row.code,
                    "message": _storable(row.message),
                    "values": [_storable(cell) for cell in row.cells],
                }
                for row in rows
            ],
        )
        await session.commit()


def _storable(text: str) -> str:
    """Text JSON and PostgreSQL can hold: undecodable bytes and NUL become U+FFFD."""
    fixed = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return fixed.replace("\x00", "\ufffd")


# --- reading --------------------------------------------------------------------------------


async def get_job(runtime: Runtime, workspace_id: int, job_id: int) -> ImportJob:
    async with runtime.sessions() as session:
        job = await session.get(ImportJob, job_id) if is_storable_id(job_id) else None
    if job is None or job.workspace_id != workspace_id:
        raise not_found(f"import job {job_id}")
    return job


def job_out(job: ImportJob) -> ImportJobOut:
    state = job.state
    if state in ("queued", "running") and _wall_now() - job.heartbeat_at > STALE_AFTER:
        state = "interrupted"
    mapping = job.mapping or {}
    return ImportJobOut(
        id=job.id,
        state=state,  # type: ignore[arg-type]
        filename=job.filename,
        map=list(mapping.get("map", [])),
        columns=list(mapping.get("header", [])),
        bytes_total=job.bytes_total,
        bytes_done=job.bytes_done,
        progress=round(job.bytes_done / job.bytes_total, 4) if job.bytes_total else 1.0,
        rows=job.rows,
        created=job.created,
        updated=job.updated,
        errors=job.errors,
        error=job.error,
        errors_url=f"/api/v1/profiles/import/{job.id}/errors",
        created_at=job.created_at,
        finished_at=job.finished_at,
    )


async def error_report(runtime: Runtime, job: ImportJob) -> AsyncIterator[bytes]:
    """The rejected rows as CSV (line, error, message, then the file's columns), in pages."""
    header = list((job.mapping or {}).get("header", []))
    yield _csv_line(["line", "error", "message", *header])
    after = 0
    while True:
        async with runtime.sessions() as session:
            rows = (
                await session.execute(
                    select(
                        ROW_ERRORS.c.id,
                        ROW_ERRORS.c.line,
                        ROW_ERRORS.c.code,
                        ROW_ERRORS.c.message,
                        ROW_ERRORS.c["values"],
                    )
                    .where(ROW_ERRORS.c.job_id == job.id, ROW_ERRORS.c.id > after)
                    .order_by(ROW_ERRORS.c.id)
                    .limit(1000)
                )
            ).all()
        if not rows:
            return
        after = rows[-1][0]
        yield b"".join(
            _csv_line([line, code, message, *values]) for _id, line, code, message, values in rows
        )


def _csv_line(values: list[Any]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue().encode("utf-8", errors="surrogateescape")
