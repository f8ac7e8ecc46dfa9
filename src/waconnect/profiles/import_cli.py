"""``waconnect profiles import FILE.csv``: the CSV import with a progress bar and a report file.

Rows that cannot be imported go to ``FILE.errors.csv`` next to the input (written on every
run, so it always describes the last one): their line, the error code, the reason, and the
cells as read — fix them there and import that file again (``--map line=- --map error=-
--map message=-``).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from waconnect.profiles.csv_import import (
    ImportCounts,
    ImportHooks,
    ImportProblem,
    RejectedRow,
    import_csv,
    parse_mapping,
    plan_columns,
)
from waconnect.runtime import Runtime
from waconnect.workspaces.service import workspace_by_name

REPORT_COLUMNS = ["line", "error", "message"]
HELPER_FROM_BYTES = 2_000_000


def report_path(path: Path) -> Path:
    """``people.csv`` -> ``people.errors.csv``."""
    if path.suffix.lower() == ".csv":
        return path.with_name(path.stem + ".errors.csv")
    return path.with_name(path.name + ".errors.csv")


def read_header(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        return next(csv.reader(handle), [])


async def import_file(
    runtime: Runtime,
    workspace: str,
    path: Path,
    map_items: list[str],
    batch_size: int,
    console: Console,
) -> tuple[ImportCounts, Path]:
    """Import ``path`` into ``workspace``; returns the counts and the report's path."""
    mapping = parse_mapping(map_items)
    total = _size(path)
    # What can never import fails before the progress bar appears: one line, exit 1.
    header = read_header(path)
    if not header:
        raise ImportProblem(f"{path} is empty: a CSV import needs a header row")
    plan_columns(header, mapping)
    async with runtime.sessions() as session:
        workspace_id = (await workspace_by_name(session, workspace)).id
    report = report_path(path)
    with (
        path.open("rb") as raw,
        io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="") as text,
        report.open("w", encoding="utf-8", errors="surrogateescape", newline="") as report_file,
        _progress(console) as progress,
    ):
        writer = csv.writer(report_file)
        writer.writerow([*REPORT_COLUMNS, *header])
        task = progress.add_task("importing", total=total)

        async def rejected(rows: list[RejectedRow]) -> None:
            writer.writerows([row.line, row.code, row.message, *row.cells] for row in rows)

        async def advanced(counts: ImportCounts) -> None:
            progress.update(
                task,
                completed=min(raw.tell(), total),
                description=f"{counts.rows} rows, {counts.errors} errors",
            )

        hooks = ImportHooks(rejected, advanced)
        counts = await import_csv(
            runtime, workspace_id, text, mapping, hooks, batch_size, _worth_a_helper(total)
        )
        progress.update(task, completed=total)
    return counts, report


def _worth_a_helper(size: int) -> bool:
    """A parsing process costs a second to start: worth it for big files on several cores."""
    return size > HELPER_FROM_BYTES and (os.cpu_count() or 1) > 1


def _size(path: Path) -> int:
    if not path.is_file():
        raise ImportProblem(f"{path}: no such file")
    return path.stat().st_size


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
