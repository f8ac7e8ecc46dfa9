"""Every segment operator, on SQLite and PostgreSQL, against a brute-force Python evaluation.

One generated workspace per test (profiles with attributes of every type, some missing; events
around the time-window edges, with properties of several JSON types; contacts in both
subscription states; numbers from several countries) is loaded once through the API; then
hypothesis draws definitions, one operator family per test, and each definition's count and
matching profiles from the API must equal what ``oracle.matches`` finds in Python.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.conftest import TEST_SECRET
from tests.profiles.oracle import OracleEvent, OracleProfile, matches
from waconnect.clock import Clock
from waconnect.messaging.models import Contact
from waconnect.profiles.definition import parse_definition
from waconnect.profiles.models import Event, Profile
from waconnect.profiles.service import load_registry
from waconnect.runtime import Runtime
from waconnect.settings import Settings
from waconnect.web.app import create_app, prepare_database
from waconnect.workspaces import service as workspaces

T = TypeVar("T")
NOW = datetime(2024, 6, 15, 12, 0, 0, tzinfo=UTC)
STRINGS = [
    "Pune",
    "pune",
    "PUNE",
    "Pu",
    "",
    "Puné",
    "Zürich",
    "zürich",
    "a b",
    "10",
    "9",
    "中文",
    "😀x",
]
NUMBERS = [-3, 0, 1, 2, 2.5, 10, 10.0, 99, -0.25]
TAGS = ["new", "vip", "New", "app", "web", ""]
COUNTRIES = ["IN", "US", "GB", "AE", "BR"]
PHONES = {
    "IN": "+91 98123 4{:04d}",
    "US": "+1 415 555 {:04d}",
    "GB": "+44 20 7946 {:04d}",
    "AE": "+971 50 123 {:04d}",
    "BR": "+55 11 96123 {:04d}",
}
EVENT_NAMES = ["Added To Cart", "Purchased", "Viewed"]
DAY_EDGES = [1, 3, 7, 30]
PROPERTY_VALUES: list[Any] = [
    100,
    150,
    99.5,
    "100",
    "sku-1",
    "SKU-1",
    True,
    False,
    ["sku-1", "x"],
    [1, 2],
    None,
]


def _date_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# Dates around "now" and the within_days edges, to the second (as they are stored).
DATES = [
    _date_text(NOW + offset)
    for offset in (
        timedelta(0),
        timedelta(seconds=1),
        -timedelta(seconds=1),
        -timedelta(days=7),
        -timedelta(days=7, seconds=1),
        -timedelta(days=7) + timedelta(seconds=1),
        -timedelta(days=30),
        -timedelta(days=400),
        timedelta(days=2),
    )
] + ["1999-12-31T23:59:59Z", "2024-06-15T00:00:00Z"]


def _profile_rows(rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for index in range(48):
        attributes: dict[str, Any] = {}
        if rng.random() < 0.8:
            attributes["city"] = rng.choice(STRINGS)
        if rng.random() < 0.8:
            attributes["score"] = rng.choice(NUMBERS)
        if rng.random() < 0.7:
            attributes["vip"] = rng.random() < 0.5
        if rng.random() < 0.8:
            attributes["signup"] = rng.choice(DATES)
        if rng.random() < 0.7:
            attributes["tags"] = rng.sample(TAGS, rng.randint(0, 3))
        row: dict[str, Any] = {"identity": f"p{index}", "attributes": attributes}
        if index % 6 != 5:  # some profiles have no phone, hence no contact
            country = COUNTRIES[index % len(COUNTRIES)]
            row["phone"] = PHONES[country].format(1000 + index)
            row["subscription"] = rng.choice(["subscribed", "unsubscribed"])
        rows.append(row)
    # The first row of each attribute decides its type: make those rows typical.
    rows[0]["attributes"] = {
        "city": "Pune",
        "score": 1,
        "vip": True,
        "signup": DATES[0],
        "tags": ["new"],
    }
    return rows


def _event_rows(rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for _ in range(260):
        days = rng.choice(DAY_EDGES)
        ts = NOW - timedelta(days=days) + timedelta(seconds=rng.choice([-1, 0, 1, 3600]))
        if rng.random() < 0.1:
            ts = NOW + timedelta(hours=1)  # in the future: outside every "last N days"
        properties = {}
        for name in ("amount", "sku", "coupon"):
            if rng.random() < 0.7:
                value = rng.choice(PROPERTY_VALUES)
                properties[name] = value
        rows.append(
            {
                "identity": f"p{rng.randrange(48)}",
                "name": rng.choice(EVENT_NAMES),
                "properties": properties,
                "ts": ts.isoformat(),
            }
        )
    return rows


_names = itertools.count()


class FrozenClock(Clock):
    """Business time standing still at NOW: the window edges are exact to the second."""

    def now(self) -> datetime:
        return NOW


@dataclass(repr=False)
class World:
    """A loaded workspace, the API client on its own loop, and the profiles as Python data."""

    loop: asyncio.AbstractEventLoop
    client: httpx.AsyncClient
    auth: dict[str, str]
    runtime: Runtime
    profiles: list[OracleProfile]
    registry: dict[str, Any]

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def check(self, definition: dict[str, Any]) -> int:
        node = parse_definition(definition, self.registry)
        expected = sorted(p.id for p in self.profiles if matches(node, p, NOW))
        count, found = self.run(self._segment(definition))
        assert (count, sorted(found)) == (len(expected), expected), definition
        return count

    async def _segment(self, definition: dict[str, Any]) -> tuple[int, list[int]]:
        name = f"s{next(_names)}"
        created = await self.client.post(
            "/api/v1/segments", json={"name": name, "definition": definition}, headers=self.auth
        )
        assert created.status_code == 201, created.text
        preview = await self.client.get(
            f"/api/v1/segments/{created.json()['id']}/preview",
            params={"limit": 100},
            headers=self.auth,
        )
        assert preview.status_code == 200, preview.text
        body = preview.json()
        return body["count"], [item["id"] for item in body["items"]]


async def _load(runtime: Runtime, client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    rng = random.Random(4)
    rows = _profile_rows(rng)
    response = await client.post("/api/v1/profiles/batch", json={"profiles": rows}, headers=auth)
    assert response.status_code == 200 and response.json()["rejected"] == 0, response.text
    response = await client.post(
        "/api/v1/events/batch", json={"events": _event_rows(rng)}, headers=auth
    )
    assert response.status_code == 200 and response.json()["rejected"] == 0, response.text


async def _read_back(runtime: Runtime) -> tuple[list[OracleProfile], dict[str, Any]]:
    """The profiles as stored, for the oracle (stored forms: dates in UTC text, ...)."""
    async with runtime.sessions() as session:
        contacts = dict((await session.execute(select(Contact.phone, Contact.subscription))).all())
        profiles = {
            p.id: OracleProfile(p.id, p.attributes, p.country, contacts.get(p.phone or ""))
            for p in await session.scalars(select(Profile))
        }
        for event in await session.scalars(select(Event)):
            profiles[event.profile_id].events.append(
                OracleEvent(event.name, event.ts, event.properties)
            )
        registry = await load_registry(session, 1)
    return list(profiles.values()), registry


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    loop = asyncio.new_event_loop()
    settings_ = Settings(
        database_url=db_url, data_dir=tmp_path / "data", secret_key=TEST_SECRET, run_worker=False
    )
    runtime = Runtime.build(settings_, clock=FrozenClock())
    # The app's lifespan would only migrate and make the default workspace: done here, so
    # that every request can run on this loop from a plain (synchronous) hypothesis test.
    loop.run_until_complete(prepare_database(runtime))
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(runtime=runtime)),
        base_url="http://waconnect.test",
    )

    async def key() -> str:
        async with runtime.sessions() as session:
            found = await workspaces.workspace_by_name(session, "default")
            _row, made = await workspaces.create_key(session, runtime.clock, found.id, "t")
            await session.commit()
        return made

    auth = {"Authorization": f"Bearer {loop.run_until_complete(key())}"}
    loop.run_until_complete(_load(runtime, client, auth))
    profiles, registry = loop.run_until_complete(_read_back(runtime))
    yield World(loop, client, auth, runtime, profiles, registry)
    loop.run_until_complete(client.aclose())
    loop.run_until_complete(runtime.close())
    loop.close()


# --- definitions ----------------------------------------------------------------------------

EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
ORDER = ["eq", "ne", "lt", "le", "gt", "ge"]
text_values = st.sampled_from(STRINGS) | st.text(alphabet="PuneéZ😀 1", max_size=4)
number_values = st.sampled_from(NUMBERS) | st.integers(-5, 120)
date_values = st.sampled_from(DATES) | st.sampled_from(["2024-06-08", "2024-06-15T12:00:00+05:30"])


def attr(name: str, op: str, value: Any) -> dict[str, Any]:
    return {"attribute": name, "op": op, "value": value}


def exists_of(name: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda present: {"attribute": name, "op": "exists", "value": present}, st.booleans()
    )


def in_of(name: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(lambda items: attr(name, "in", items), st.lists(values, max_size=4))


string_conditions = (
    st.builds(attr, st.just("city"), st.sampled_from([*ORDER, "contains"]), text_values)
    | in_of("city", text_values)
    | exists_of("city")
)
number_conditions = (
    st.builds(attr, st.just("score"), st.sampled_from(ORDER), number_values)
    | in_of("score", number_values)
    | exists_of("score")
)
boolean_conditions = (
    st.builds(attr, st.just("vip"), st.sampled_from(["eq", "ne"]), st.booleans())
    | in_of("vip", st.booleans())
    | exists_of("vip")
)
date_conditions = (
    st.builds(attr, st.just("signup"), st.sampled_from([*ORDER, "before", "after"]), date_values)
    | st.builds(attr, st.just("signup"), st.just("within_days"), st.sampled_from([1, 7, 30, 400]))
    | in_of("signup", date_values)
    | exists_of("signup")
)
list_conditions = st.builds(attr, st.just("tags"), st.just("contains"), st.sampled_from(TAGS)) | (
    exists_of("tags")
)

property_values = st.sampled_from([v for v in PROPERTY_VALUES if not isinstance(v, list | None)])
property_conditions = (
    st.builds(
        lambda name, op, value: {"property": name, "op": op, "value": value},
        st.sampled_from(["amount", "sku", "coupon"]),
        st.sampled_from(ORDER),
        property_values.filter(lambda v: not isinstance(v, bool)),
    )
    | st.builds(
        lambda name, op, value: {"property": name, "op": op, "value": value},
        st.sampled_from(["coupon", "amount"]),
        st.sampled_from(["eq", "ne"]),
        st.booleans(),
    )
    | st.builds(
        lambda name, value: {"property": name, "op": "contains", "value": value},
        st.sampled_from(["sku", "amount"]),
        st.sampled_from(["sku", "sku-1", "x", "1", ""]),
    )
    | st.builds(
        lambda name, values: {"property": name, "op": "in", "value": values},
        st.sampled_from(["amount", "sku"]),
        st.lists(property_values, max_size=3),
    )
    | st.builds(
        lambda name, present: {"property": name, "op": "exists", "value": present},
        st.sampled_from(["amount", "coupon"]),
        st.booleans(),
    )
)


@st.composite
def event_conditions(draw: st.DrawFn, with_where: bool) -> dict[str, Any]:
    condition: dict[str, Any] = {"event": draw(st.sampled_from(EVENT_NAMES))}
    did = draw(st.booleans())
    if not did or draw(st.booleans()):
        condition["did"] = did
    if did:
        low = draw(st.none() | st.integers(0, 3))
        high = draw(st.none() | st.integers(low or 0, 4))
        if low is not None:
            condition["min_count"] = low
        if high is not None:
            condition["max_count"] = high
    window = draw(st.sampled_from(["none", "days", "between", "between-dates"]))
    if window == "days":
        condition["within_days"] = draw(st.sampled_from(DAY_EDGES))
    elif window == "between":
        start = NOW - timedelta(days=draw(st.sampled_from(DAY_EDGES)))
        end = start + timedelta(days=draw(st.integers(0, 10)), seconds=draw(st.integers(0, 2)))
        condition["between"] = [start.isoformat(), end.isoformat()]
    elif window == "between-dates":
        condition["between"] = ["2024-06-08", draw(st.sampled_from(["2024-06-12", "2024-06-14"]))]
    if with_where:
        condition["where"] = draw(st.lists(property_conditions, max_size=2))
    return condition


subscription_conditions = st.builds(
    lambda state: {"subscription": state}, st.sampled_from(["subscribed", "unsubscribed"])
)
country_conditions = st.builds(
    lambda codes: {"country": codes if len(codes) != 1 else codes[0]},
    st.lists(st.sampled_from([*COUNTRIES, "CA"]), min_size=1, max_size=3),
)


def grouped(leaves: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Leaves, alone or nested in all / any / not."""
    return st.recursive(
        leaves,
        lambda inner: (
            st.builds(lambda items: {"all": items}, st.lists(inner, max_size=3))
            | st.builds(lambda items: {"any": items}, st.lists(inner, max_size=3))
            | st.builds(lambda item: {"not": item}, inner)
        ),
        max_leaves=5,
    )


# --- the checks: one operator family each ---------------------------------------------------


def _family(strategy: st.SearchStrategy[dict[str, Any]]) -> Callable[[World], None]:
    def test(world: World) -> None:
        counts: set[int] = set()

        @EXAMPLES
        @given(definition=grouped(strategy))
        def check(definition: dict[str, Any]) -> None:
            counts.add(world.check(definition))

        check()
        # The checks mean something only if definitions select different sets.
        assert len(counts - {0, len(world.profiles)}) >= 3, counts

    return test


test_string_attributes = _family(string_conditions)
test_number_attributes = _family(number_conditions)
test_boolean_attributes = _family(boolean_conditions)
test_date_attributes = _family(date_conditions)
test_list_attributes = _family(list_conditions)
test_events_did_counts_and_windows = _family(event_conditions(with_where=False))
test_event_property_conditions = _family(event_conditions(with_where=True))
test_subscription_and_country = _family(subscription_conditions | country_conditions)
test_everything_nested = _family(
    string_conditions
    | number_conditions
    | date_conditions
    | list_conditions
    | event_conditions(with_where=True)
    | subscription_conditions
    | country_conditions
)


def test_the_world_has_what_the_checks_need(world: World) -> None:
    """Guard against a generator drift that would make the checks vacuous."""
    assert len(world.profiles) == 48
    assert sum(len(p.events) for p in world.profiles) == 260
    assert {str(t) for t in world.registry.values()} == {
        "string",
        "number",
        "boolean",
        "date",
        "list",
    }
    assert any("city" not in p.attributes for p in world.profiles)
    assert {p.subscription for p in world.profiles} == {"subscribed", "unsubscribed", None}
    assert {p.country for p in world.profiles} == {*COUNTRIES, None}
