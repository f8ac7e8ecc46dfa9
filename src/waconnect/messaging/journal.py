"""Group commit for the dispatcher's bookkeeping, written at the driver level.

Senders hand their writes (attempt begun, attempt finished) to one writer task that applies
everything pending in one transaction: thousands of messages a second cost a few commits, and
"begun" is still durable before the request that it announces is written.

What made this path slow was not the database: SQLAlchemy's per-parameter processing cost
several times what SQLite spent, and every statement of a transaction was one hop from the
event loop to the driver's thread and back, each hop waiting behind the sends. So the rows are
plain tuples run with the driver's ``executemany`` (``DriverSql``), and on SQLite a whole
transaction — its statements and its commit — is one hop to a thread of our own
(``SqliteHop``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeVar

import orjson
from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from waconnect.db.engine import sqlite_pragmas
from waconnect.db.turn import WriteTurn

log = logging.getLogger("waconnect.journal")

Rows = Sequence[tuple[Any, ...]]
Write = Callable[[Sequence[Any]], Awaitable[Any]]
Waiter = asyncio.Future[Any]
Entry = tuple[Sequence[Any], Waiter]

_NUMBERED = re.compile(r"\$(\d+)")
_WHERE = re.compile(r"\sWHERE\s", re.IGNORECASE)
_VALUES = re.compile(r"\sVALUES\s*\((.*?)\)\s*(ON CONFLICT\s.*)?$", re.IGNORECASE | re.DOTALL)


@lru_cache(maxsize=4096)
def sqlite_time(moment: datetime) -> str:
    """A UTC timestamp as SQLAlchemy stores it in SQLite (UTCDateTime: naive UTC text).

    Cached: the rows of one batch mostly share a few moments (a chunk's due time and expiry,
    a response's time), and formatting was a measurable share of the event loop's time."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def sqlite_numbered(statement: str) -> str:
    """A statement written with asyncpg's ``$1``, ``$2``… in SQLite's ``?1``, ``?2``…"""
    return _NUMBERED.sub(r"?\1", statement)


class Bulk:
    """A statement run for many rows at once.

    Written once with ``$1``, ``$2``… for one row, as asyncpg runs it (``executemany``). On
    SQLite the rows go as one JSON array in one statement (``json_each``): an ``executemany``
    there hands the GIL back and forth once per row, and each time waits for the busy event
    loop. ``INSERT … VALUES (…)`` becomes ``INSERT … SELECT … FROM json_each``; ``UPDATE … WHERE``
    becomes ``UPDATE … FROM (json_each) AS v WHERE`` (both looked up by index, checked with
    EXPLAIN QUERY PLAN).
    """

    def __init__(self, statement: str) -> None:
        self.postgres = statement
        self.sqlite = _over_json_rows(statement)


def _over_json_rows(statement: str) -> str:
    width = max(int(n) for n in _NUMBERED.findall(statement))
    columns = ", ".join(f"json_extract(value, '$[{k - 1}]') AS p{k}" for k in range(1, width + 1))
    rows = f"(SELECT {columns} FROM json_each(?1)) AS v"
    values = _VALUES.search(statement)
    if values is not None:
        picked = _as_columns(values.group(1))
        # SQLite needs a WHERE before ON CONFLICT after a SELECT, or it reads a join.
        conflict = f" WHERE true {values.group(2)}" if values.group(2) else ""
        return f"{statement[: values.start()]} SELECT {picked} FROM {rows}{conflict}"
    where = list(_WHERE.finditer(statement))[-1].start()
    head, tail = statement[:where], statement[where:]
    return f"{_as_columns(head)} FROM {rows}{_as_columns(tail)}"


def _as_columns(text: str) -> str:
    return _NUMBERED.sub(r"v.p\1", text)


Steps = Sequence[tuple[str, tuple[Any, ...]]]
T = TypeVar("T")


def _steps(connection: sqlite3.Connection, steps: Steps) -> list[Any]:
    """Each (statement, values) in turn; the last one's rows."""
    fetched: list[Any] = []
    for statement, values in steps:
        fetched = connection.execute(statement, values).fetchall()
    return fetched


class SqliteHop:
    """One SQLite connection on one thread of its own: ``run`` executes a whole transaction
    there in one hop. The thread takes the process's writer turn itself (SQLite has one
    writer), so transactions queued here follow one another without the event loop."""

    def __init__(self, path: str, turn: WriteTurn) -> None:
        self._path = path
        self._turn = turn
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._connection: sqlite3.Connection | None = None

    async def run(self, steps: Steps) -> list[Any]:
        """Execute each (statement, values) in one transaction; the last one's rows."""
        fetched = await self.call(lambda connection: _steps(connection, steps))
        assert fetched is not None  # the steps always run
        return fetched

    async def run_unless(self, checks: Steps, steps: Steps) -> bool:
        """Run ``steps`` in one transaction unless one of ``checks``, run first in that same
        transaction, finds a row; then nothing is written. True when the steps ran."""

        def work(connection: sqlite3.Connection) -> list[Any] | None:
            if any(connection.execute(sql, values).fetchone() for sql, values in checks):
                return None
            return _steps(connection, steps)

        return await self.call(work) is not None

    async def call(self, work: Callable[[sqlite3.Connection], T | None]) -> T | None:
        """``work(connection)`` in one transaction on this thread, committed unless it
        returns None (then rolled back: nothing written). Its result is returned."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._transaction, work)

    def _connect(self) -> sqlite3.Connection:
        connection = self._connection
        if connection is None:
            # Autocommit mode: we write BEGIN and COMMIT ourselves.
            connection = sqlite3.connect(self._path, timeout=30, isolation_level=None)
            sqlite_pragmas(connection, None)
            self._connection = connection
        return connection

    def _transaction(self, work: Callable[[sqlite3.Connection], T | None]) -> T | None:
        connection = self._connect()
        self._turn.take_blocking()
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                result = work(connection)
                connection.execute("ROLLBACK" if result is None else "COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        finally:
            self._turn.give()
        return result

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=False)

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


Writer = Callable[[], AbstractAsyncContextManager[AsyncSession]]
_PLAIN: dict[str, DriverSql] = {}


class DriverSql:
    """Statements and values in the driver's own terms, for what runs many times a second.

    Values must be what the ORM would store: ``time`` encodes a timestamp as SQLAlchemy's
    column type does for each database, so rows written here read back through the models
    unchanged. Single statements are written with ``$1``, ``$2``… too (SQLite reads them as
    ``?1``, ``?2``…, so a value may be used twice).
    """

    def __init__(self, engine: AsyncEngine | Engine, turn: WriteTurn | None = None) -> None:
        """``turn``: the runtime's SQLite writer turn; with it, a SQLite file's transactions
        run whole on a thread of their own (``SqliteHop``)."""
        self.postgres = engine.dialect.name == "postgresql"
        database = engine.url.database
        in_file = bool(database) and database != ":memory:"
        hopping = turn is not None and in_file and not self.postgres
        self._hop = SqliteHop(str(database), turn) if hopping and turn is not None else None

    @property
    def hopping(self) -> bool:
        """SQLite in a file: whole transactions run in one hop (``write``, ``write_unless``)."""
        return self._hop is not None

    @classmethod
    def of(cls, session: AsyncSession) -> DriverSql:
        """For statements run on a session's own connection (``execute``): no thread."""
        bind = session.get_bind()
        plain = _PLAIN.get(bind.dialect.name)
        if plain is None:
            plain = _PLAIN[bind.dialect.name] = cls(bind)
        return plain

    def sql(self, statement: str) -> str:
        return statement if self.postgres else sqlite_numbered(statement)

    def time(self, moment: datetime) -> Any:
        """A UTC timestamp: aware for asyncpg; SQLAlchemy's SQLite text form otherwise."""
        return moment if self.postgres else sqlite_time(moment)

    def id_list(self, number: int) -> str:
        """A subquery of the ids passed as parameter ``number`` (see ``ids``): one parameter
        for any number of ids, where ``IN (…)`` would need one each."""
        if self.postgres:
            return f"SELECT unnest(${number}::bigint[])"
        return f"SELECT value FROM json_each(${number})"

    def ids(self, values: Sequence[int]) -> Any:
        return list(values) if self.postgres else orjson.dumps(list(values)).decode()

    def read_json(self, value: Any) -> Any:
        """A JSON column as returned by the driver (asyncpg decodes it, SQLite gives text)."""
        return orjson.loads(value) if isinstance(value, (str, bytes)) else value

    def _sqlite_steps(self, steps: Sequence[tuple[Bulk, Rows]]) -> list[tuple[str, tuple[Any]]]:
        return [(bulk.sqlite, (orjson.dumps(rows).decode(),)) for bulk, rows in steps if rows]

    async def write(self, writer: Writer, steps: Sequence[tuple[Bulk, Rows]]) -> None:
        """Run ``steps`` in one transaction of their own, in the runtime's writer turn."""
        if self._hop is not None:
            await self._hop.run(self._sqlite_steps(steps))  # its thread takes the turn
            return
        async with writer() as session:
            await self.execute(session, steps)
            await session.commit()

    async def write_unless(
        self,
        checks: Sequence[tuple[str, tuple[Any, ...]]],
        steps: Sequence[tuple[Bulk | str, Any]],
    ) -> bool:
        """SQLite: ``steps`` (bulk rows, or a plain statement and its values) in one hop,
        unless a check finds a row in the same transaction. False when not written, always
        on PostgreSQL (the caller then takes its general path)."""
        if self._hop is None:
            return False
        plain = [
            (step.sqlite, (orjson.dumps(values).decode(),))
            if isinstance(step, Bulk)
            else (self.sql(step), values)
            for step, values in steps
            if values
        ]
        return await self._hop.run_unless(
            [(self.sql(sql), values) for sql, values in checks], plain
        )

    async def call(self, work: Callable[[sqlite3.Connection], T | None]) -> T | None:
        """SQLite in a file only (``hopping``): ``work`` in one transaction on the thread,
        in the writer turn; committed unless it returns None."""
        assert self._hop is not None, "call() needs a SQLite file and the writer turn"
        return await self._hop.call(work)

    async def fetch(self, writer: Writer, statement: str, values: tuple[Any, ...]) -> list[Any]:
        """One writing statement that returns rows (``RETURNING``), committed, in a session:
        in one hop, each row would be a GIL round trip in the writer turn (use ``call``)."""
        async with writer() as session:
            connection = await session.connection()
            result = await connection.exec_driver_sql(self.sql(statement), values)
            rows = list(result.all())
            await session.commit()
            return rows

    async def execute(self, session: AsyncSession, steps: Sequence[tuple[Bulk, Rows]]) -> None:
        """Run ``steps`` on a session's connection, in the caller's transaction."""
        connection = await session.connection()
        if self.postgres:
            for bulk, rows in steps:
                if rows:
                    await connection.exec_driver_sql(bulk.postgres, list(rows))
            return
        for statement, values in self._sqlite_steps(steps):
            await connection.exec_driver_sql(statement, values)

    async def close(self) -> None:
        if self._hop is not None:
            await self._hop.close()


class Journal:
    """Batches writes per kind; ``submit`` resolves once its batch is committed.

    Kinds are served in the order of ``writers``: the first kind ("begin", which a request
    waits for) always goes before the others and in its own short transaction, so a send
    never waits behind a large batch of bookkeeping that nothing waits for. Each writer runs
    its own transaction.
    """

    def __init__(self, writers: dict[str, Write], max_batch: int = 2000) -> None:
        self._writers = writers
        self._max_batch = max_batch
        # Per kind: (items, the future their submitter waits on), in submission order.
        self._pending: dict[str, list[Entry]] = {k: [] for k in writers}
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="journal")

    def submit(self, kind: str, items: Sequence[Any]) -> Waiter:
        """Queue ``items`` of one kind; the future resolves when all of them are committed,
        to what the kind's writer returned for the batch they were written in."""
        future: Waiter = asyncio.get_running_loop().create_future()
        self._pending[kind].append((items, future))
        self._wakeup.set()
        return future

    async def close(self) -> None:
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task

    def _next_batch(self) -> tuple[str, list[Entry]] | None:
        for kind, queue in self._pending.items():
            if not queue:
                continue
            taken, size = 1, len(queue[0][0])
            while taken < len(queue) and size + len(queue[taken][0]) <= self._max_batch:
                size += len(queue[taken][0])
                taken += 1
            batch, self._pending[kind] = queue[:taken], queue[taken:]
            return kind, batch
        return None

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while (taken := self._next_batch()) is not None:
                await self._commit(*taken)
            if self._closing:
                return

    async def _commit(self, kind: str, batch: list[Entry]) -> None:
        items = [item for entries, _future in batch for item in entries]
        try:
            result = await self._writers[kind](items)
        except Exception as exc:  # the senders decide what a lost write means
            log.exception("journal commit of %d %s writes failed", len(items), kind)
            for _items, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for _items, future in batch:
            if not future.done():
                future.set_result(result)
