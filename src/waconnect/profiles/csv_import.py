"""CSV import of profiles: streamed, batched, every row accounted for.

The file is read with the csv module over a text stream, one batch (5,000 rows) at a time, so
memory stays flat whatever the size. Each batch is one ``upsert_profiles`` transaction, the same
path as the API's batches. Two batches are in flight: one is parsed (phone numbers are the
costly part; in a helper process for big files) while the one before it is written. Each row
ends created, updated, or in the error report with its line, a reason and its cells as read;
blank lines are counted.

Columns: ``identity``, ``phone``, ``timezone`` and ``subscription`` are the profile's own;
every other column is an attribute named after its header. ``--map COLUMN=TARGET[:TYPE]``
renames a column (``--map mobile=phone``, ``--map cust_id=identity``), declares its type
(``--map zip=zip:string``) or skips it (``--map notes=-``). A column's type comes from the map,
else from the workspace's registry, else from the cells of the first batch that has values
(attributes.infer_text_type: number, true/false or ISO date when at least 4 in 5 cells are;
``0411`` is not a number), and cells of another type are row errors. Lists are ``a|b|c``."""

from __future__ import annotations

import asyncio
import csv
import multiprocessing
import re
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import text as sql_text

from waconnect.phones import InvalidPhone, normalize_phone
from waconnect.profiles.attributes import (
    AttrType,
    ValueProblem,
    check_name,
    infer_text_type,
    parse_text,
)
from waconnect.profiles.schemas import clean_identity
from waconnect.profiles.service import (
    ProfileRow,
    RowError,
    load_registry,
    phone_country,
    upsert_profiles,
)
from waconnect.runtime import Runtime
from waconnect.workspaces.service import get_workspace, settings_of

# Rows per transaction: each batch has fixed costs (registry, workspace, commit, the hand-over
# between the reading and the writing process) that a bigger batch spreads thinner.
BATCH_SIZE = 5000
ANALYZE_FROM = 4000
OWN_COLUMNS = ("identity", "phone", "timezone", "subscription")
SKIP = "-"
# Python's csv refuses fields over 128 KB by default; a long text attribute may be bigger.
csv.field_size_limit(10 * 1024 * 1024)


# Files are decoded with "surrogateescape": bytes that are not UTF-8 become lone surrogates.
_UNDECODABLE = re.compile("[\udc80-\udcff]")


class ImportProblem(ValueError):
    """The file or the mapping cannot be imported at all; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Column:
    index: int
    header: str
    target: str  # identity | phone | timezone | subscription | an attribute name
    declared: AttrType | None = None

    @property
    def is_attribute(self) -> bool:
        return self.target not in OWN_COLUMNS


@dataclass(frozen=True, slots=True)
class RejectedRow:
    line: int
    code: str
    message: str
    cells: list[str]


@dataclass(slots=True)
class ImportCounts:
    rows: int = 0
    created: int = 0
    updated: int = 0
    errors: int = 0
    blank: int = 0

    def summary(self) -> str:
        text = (
            f"imported {self.rows} rows: {self.created} created, {self.updated} updated, "
            f"{self.errors} errors"
        )
        return text + (f" ({self.blank} blank lines skipped)" if self.blank else "")


@dataclass
class ImportHooks:
    """What the CLI and the API job do with progress and rejected rows."""

    rejected: Callable[[list[RejectedRow]], Awaitable[None]]
    progress: Callable[[ImportCounts], Awaitable[None]] = field(default=lambda _c: _done())


async def _done() -> None:
    return None


def parse_mapping(items: list[str]) -> dict[str, tuple[str, AttrType | None]]:
    """``COLUMN=TARGET[:TYPE]`` items -> {column: (target, type)}."""
    mapping: dict[str, tuple[str, AttrType | None]] = {}
    for item in items:
        column, sep, rest = item.partition("=")
        if not sep or not column.strip():
            raise ImportProblem(
                f"--map {item!r}: write COLUMN=TARGET[:TYPE], e.g. mobile=phone or zip=zip:string"
            )
        target, _, kind = rest.strip().partition(":")
        declared: AttrType | None = None
        if kind:
            try:
                declared = AttrType(kind.strip().lower())
            except ValueError:
                raise ImportProblem(
                    f"--map {item!r}: unknown type {kind!r}; use one of "
                    + ", ".join(t.value for t in AttrType)
                ) from None
        mapping[column.strip()] = (target.strip() or SKIP, declared)
    return mapping


def plan_columns(
    header: list[str], mapping: dict[str, tuple[str, AttrType | None]]
) -> list[Column]:
    """The columns to read, from the header row and the map; raises ImportProblem."""
    names = [name.strip() for name in header]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ImportProblem(f"the header names a column twice: {', '.join(duplicates)}")
    missing = [column for column in mapping if column not in names]
    if missing:
        raise ImportProblem(
            f"--map names column {missing[0]!r}, which the header does not have "
            f"(columns: {', '.join(names)})"
        )
    columns: list[Column] = []
    for index, name in enumerate(names):
        target, declared = mapping.get(name, (name, None))
        if target == SKIP or not name:
            continue
        if target in OWN_COLUMNS and declared is not None:
            raise ImportProblem(f"--map {name}: {target} has no type to declare")
        if target not in OWN_COLUMNS:
            try:
                check_name(target)
            except ValueProblem as exc:
                raise ImportProblem(f"column {name!r}: {exc.message}") from None
        columns.append(Column(index, name, target, declared))
    targets = [c.target for c in columns]
    repeated = sorted({t for t in targets if targets.count(t) > 1})
    if repeated:
        raise ImportProblem(f"two columns map to {repeated[0]!r}; skip one with --map COLUMN=-")
    if "identity" not in targets and "phone" not in targets:
        raise ImportProblem(
            "the file needs an identity or a phone column to match profiles "
            "(rename one with --map COLUMN=identity or --map COLUMN=phone)"
        )
    return columns


# A phone cell normalized: (E.164 digits, region), or why it is not a phone number.
Phone = tuple[str, str | None] | str


def normalize_phones(texts: list[str], default_country: str) -> list[Phone]:
    """The numbering-plan work of a batch, the costly part of reading a row (in the helper
    process for big files). Empty cells come back empty."""
    found: list[Phone] = []
    for text in texts:
        if not text:
            found.append(("", None))
            continue
        try:
            phone = normalize_phone(text, default_country)
        except InvalidPhone as exc:
            found.append(f"phone: {exc}")
            continue
        found.append((phone, phone_country(phone)))
    return found


def _set_phone(row: ProfileRow, phone: Phone) -> RowError | None:
    if isinstance(phone, str):
        return RowError("invalid_phone", phone, "phone")
    row.phone, row.country = phone[0] or None, phone[1]
    return None


@lru_cache(maxsize=1024)
def _valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


class _RowReader:
    """Turns CSV records into profile rows with the columns' types."""

    def __init__(self, columns: list[Column], width: int, default_country: str) -> None:
        self.columns = columns
        self.width = width
        self.default_country = default_country
        self.phone_index = next((c.index for c in columns if c.target == "phone"), None)
        self.types: dict[str, AttrType] = {
            c.target: c.declared for c in columns if c.declared is not None
        }

    def check_declared(self, registry: dict[str, AttrType]) -> None:
        for column in self.columns:
            registered = registry.get(column.target)
            if column.declared is not None and registered not in (None, column.declared):
                raise ImportProblem(
                    f"--map {column.header}: attribute {column.target!r} is a {registered} in "
                    f"this workspace, not a {column.declared}"
                )

    def needs_types(self) -> bool:
        return any(c.is_attribute and c.target not in self.types for c in self.columns)

    def settle_types(self, registry: dict[str, AttrType], records: list[list[str]]) -> None:
        """Give untyped attribute columns a type: registered, else read off this batch's
        cells (a column with no value yet waits for one)."""
        for column in self.columns:
            if not column.is_attribute or column.target in self.types:
                continue
            if column.target in registry:
                self.types[column.target] = registry[column.target]
                continue
            cells = [
                r[column.index].strip()
                for r in records
                if column.index < len(r) and r[column.index].strip()
            ]
            if cells:
                self.types[column.target] = infer_text_type(cells)

    def phone_cells(self, records: list[list[str]]) -> list[str]:
        index = self.phone_index
        assert index is not None
        return [cells[index].strip() if index < len(cells) else "" for cells in records]

    def row(self, cells: list[str], phone: Phone | None = None) -> ProfileRow | RowError:
        """``phone``: the phone cell already normalized (by the helper process), if it was."""
        if len(cells) > self.width:
            return RowError(
                "validation_error", f"the row has {len(cells)} cells; the header has {self.width}"
            )
        if _UNDECODABLE.search("".join(cells)):
            return RowError("validation_error", "the row is not UTF-8 text")
        row = ProfileRow(identity=None, phone=None, attributes={}, types=self.types)
        for column in self.columns:
            text = cells[column.index].strip() if column.index < len(cells) else ""
            if not text:
                continue  # an empty cell leaves the value as it is
            if column.target == "phone" and phone is not None:
                problem = _set_phone(row, phone)
            else:
                problem = self._set(row, column, text)
            if problem is not None:
                return problem
        if row.identity is None and row.phone is None:
            return RowError("validation_error", "the row has neither identity nor phone")
        return row

    def _set(self, row: ProfileRow, column: Column, text: str) -> RowError | None:
        target = column.target
        if target == "identity":
            try:
                row.identity = clean_identity(text)
            except ValueError as exc:
                return RowError("validation_error", f"identity: {exc}", "identity")
        elif target == "phone":
            return _set_phone(row, normalize_phones([text], self.default_country)[0])
        elif target == "timezone":
            if not _valid_zone(text):
                return RowError(
                    "validation_error",
                    f"timezone: {text!r} is not an IANA time zone such as Asia/Kolkata",
                    "timezone",
                )
            row.timezone, row.timezone_given = text, True
        elif target == "subscription":
            state = text.lower()
            if state not in ("subscribed", "unsubscribed"):
                return RowError(
                    "validation_error",
                    f"subscription: {text!r} is not subscribed or unsubscribed",
                    "subscription",
                )
            row.subscription = state
        else:
            try:
                row.attributes[target] = parse_text(target, text, self.types[target])
            except ValueProblem as exc:
                return RowError(exc.code, exc.message, f"attributes.{target}")
        return None


def _records(reader: Iterator[list[str]], counts: ImportCounts) -> Iterator[tuple[int, list[str]]]:
    """(line, cells) of each record; blank lines counted; a record the csv module cannot read
    comes back with no cells and its error in place of the first."""
    line = 1
    while True:
        start = line + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = getattr(reader, "line_num", start)
            yield start, [f"\x00{exc}"]
            continue
        line = getattr(reader, "line_num", start)
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            counts.blank += 1
            continue
        yield start, cells


async def import_csv(
    runtime: Runtime,
    workspace_id: int,
    stream: TextIO,
    mapping: dict[str, tuple[str, AttrType | None]],
    hooks: ImportHooks,
    batch_size: int = BATCH_SIZE,
    parse_in_process: bool = False,
) -> ImportCounts:
    """Import every record of ``stream`` (a text stream opened with ``newline=""``).

    ``parse_in_process``: parse rows (phone numbers are the costly part) in a helper process,
    so that parsing and writing run on two cores; worth its start-up time for big files.
    """
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportProblem("the file is empty: a CSV import needs a header row") from None
    except csv.Error as exc:
        raise ImportProblem(f"the header row cannot be read as CSV: {exc}") from None
    columns = plan_columns(header, mapping)
    async with runtime.sessions() as session:
        settings = settings_of(await get_workspace(session, workspace_id))
        registry = await load_registry(session, workspace_id)
    rows = _RowReader(columns, len(header), settings.default_country)
    rows.check_declared(registry)
    pool = _parser_pool() if parse_in_process else None
    importer = _Importer(runtime, workspace_id, rows, hooks, pool)
    try:
        batch: list[tuple[int, list[str]]] = []
        for record in _records(reader, importer.counts):
            batch.append(record)
            if len(batch) >= batch_size:
                await importer.add(batch)
                batch = []
        if batch:
            await importer.add(batch)
        await importer.finish()
    finally:
        importer.cancel()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return importer.counts


def _parser_pool() -> ProcessPoolExecutor:
    # "spawn": the importing process has threads (the database driver's); fork would copy them.
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))


class _Importer:
    """Two batches in flight: one being read while the one before it is written."""

    def __init__(
        self,
        runtime: Runtime,
        workspace_id: int,
        rows: _RowReader,
        hooks: ImportHooks,
        pool: ProcessPoolExecutor | None,
    ) -> None:
        self.runtime = runtime
        self.workspace_id = workspace_id
        self.rows = rows
        self.hooks = hooks
        self.pool = pool
        self.counts = ImportCounts()
        self.writing: asyncio.Task[None] | None = None
        self.analyze_at = ANALYZE_FROM

    async def add(self, batch: list[tuple[int, list[str]]]) -> None:
        records = [cells for _line, cells in batch]
        if self.rows.needs_types():
            # Untyped columns had no value in earlier batches, so the batch being written
            # cannot register them: reading the registry beside it is safe.
            async with self.runtime.sessions() as session:
                registry = await load_registry(session, self.workspace_id)
            self.rows.settle_types(registry, records)
        phones: list[Phone] | None = None
        if self.pool is not None and self.rows.phone_index is not None:
            # Phones in the helper process while this process writes the previous batch;
            # the rest of the row is cheap, and read here (nothing else to ship across).
            loop = asyncio.get_running_loop()
            texts = self.rows.phone_cells(records)
            phones = await loop.run_in_executor(
                self.pool, normalize_phones, texts, self.rows.default_country
            )
        parsed = parse_records(self.rows, records, phones)
        await self.finish()
        self.writing = asyncio.create_task(self._write(batch, parsed))

    async def finish(self) -> None:
        if self.writing is not None:
            await self.writing
            self.writing = None

    def cancel(self) -> None:
        if self.writing is not None and not self.writing.done():
            self.writing.cancel()

    async def _write(
        self, batch: list[tuple[int, list[str]]], parsed: list[ProfileRow | RowError]
    ) -> None:
        outcomes = await upsert_profiles(self.runtime, self.workspace_id, parsed, "import")
        counts = self.counts
        rejected: list[RejectedRow] = []
        for (line, cells), outcome in zip(batch, outcomes, strict=True):
            counts.rows += 1
            if outcome.status == "created":
                counts.created += 1
            elif outcome.status == "updated":
                counts.updated += 1
            else:
                counts.errors += 1
                error = outcome.error or RowError("error", "not imported")
                shown = [] if cells and cells[0].startswith("\x00") else cells
                rejected.append(RejectedRow(line, error.code, error.message, shown))
        if rejected:
            await self.hooks.rejected(rejected)
        await self._analyze_as_it_grows()
        await self.hooks.progress(counts)

    async def _analyze_as_it_grows(self) -> None:
        """PostgreSQL plans with statistics that autovacuum refreshes only now and then: while
        an import grows the tables from nothing, the lookups would be planned for a handful of
        rows and scan the whole workspace (seconds per batch at 200,000 profiles). Refresh them
        each time the import has quadrupled; a sample, so a fraction of a second each."""
        if self.runtime.settings.is_sqlite or self.counts.created < self.analyze_at:
            return
        self.analyze_at *= 4
        async with self.runtime.sessions() as session:
            await session.execute(sql_text("ANALYZE profiles, contacts"))
            await session.commit()


def parse_records(
    rows: _RowReader, records: list[list[str]], phones: list[Phone] | None
) -> list[ProfileRow | RowError]:
    """A batch of records as profile rows; ``phones`` normalized beforehand, if they were."""
    if phones is None:
        return [_parse(rows, cells, None) for cells in records]
    return [_parse(rows, cells, phone) for cells, phone in zip(records, phones, strict=True)]


def _parse(rows: _RowReader, cells: list[str], phone: Phone | None) -> ProfileRow | RowError:
    if len(cells) == 1 and cells[0].startswith("\x00"):
        return RowError("malformed_csv", f"the line cannot be read as CSV: {cells[0][1:]}")
    return rows.row(cells, phone)
