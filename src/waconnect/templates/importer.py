"""Import a provider's templates: msg91's template list (B4) or a generic paged GET (A6).

An import messages no customer, so it calls the provider directly rather than through the
outbox (design.md). It reads the provider config in one short session, talks HTTP with no
transaction open, then writes everything in one write transaction. Every template the
provider lists is reported — created, updated, unchanged, or rejected with its violations —
so nothing is silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from waconnect.providers.adapters.base import HttpRequest, ProviderEndpoint, request_headers
from waconnect.providers.models import ProviderConfig
from waconnect.providers.service import endpoint_for, get_provider, plain_headers
from waconnect.providers.transport import AiohttpTransport, InDoubt, NotSent, Transport
from waconnect.runtime import Runtime
from waconnect.templates.models import Template
from waconnect.templates.schemas import ImportOutcome, ImportReport
from waconnect.templates.service import definition_of
from waconnect.templates.validation import template_type, validate_template
from waconnect.web.errors import ApiError, conflict

__all__ = ["fetch_catalogue", "import_templates"]

# A provider that keeps answering pages is broken; stop rather than loop forever. WhatsApp
# caps a business at 6,000 templates, far below this many pages.
MAX_PAGES = 1000
_SHOWN_BODY = 500
# Keys of a provider's template that are ours once imported, not part of the definition.
_PROVIDER_KEYS = ("id", "status", "namespace")


@dataclass(frozen=True, slots=True)
class Catalogue:
    """The provider's templates in WhatsApp's format (``id`` and ``status`` included)."""

    source: str
    templates: list[dict[str, Any]]


# --- the import ---------------------------------------------------------------------------------


async def import_templates(
    runtime: Runtime, workspace_id: int, provider_id: int, transport: Transport | None = None
) -> ImportReport:
    """Fetch the provider's templates and upsert them by (name, language)."""
    async with runtime.sessions() as session:
        config = await get_provider(session, workspace_id, provider_id)
    own = transport or AiohttpTransport(1, runtime.settings.http_timeout_seconds)
    try:
        catalogue = await fetch_catalogue(runtime, config, own)
    finally:
        if transport is None:
            await own.close()
    async with runtime.writer() as session:
        existing = {
            (row.name, row.language): row
            for row in await session.scalars(
                select(Template).where(Template.provider_id == provider_id)
            )
        }
        now = runtime.clock.now()
        decided = [_upsert(item, existing, now) for item in catalogue.templates]
        for _outcome, row in decided:
            if row is not None and row.id is None:
                row.workspace_id, row.provider_id = workspace_id, provider_id
                session.add(row)
        try:
            await session.flush()
        except IntegrityError as exc:
            raise conflict(
                "templates of this provider changed during the import; run it again"
            ) from exc
        for outcome, row in decided:
            outcome.template_id = row.id if row is not None else None
        await session.commit()
    return _report(provider_id, catalogue.source, [outcome for outcome, _row in decided])


def _report(provider_id: int, source: str, results: list[ImportOutcome]) -> ImportReport:
    counts = {kind: 0 for kind in ("created", "updated", "unchanged", "rejected")}
    for outcome in results:
        counts[outcome.outcome] += 1
    return ImportReport(
        provider_id=provider_id, source=source, fetched=len(results), results=results, **counts
    )


def _upsert(
    item: Mapping[str, Any], existing: dict[tuple[str, str], Template], now: datetime
) -> tuple[ImportOutcome, Template | None]:
    """Decide what happens to one listed template; new and changed rows are filled in."""
    name, language = _text(item.get("name")), _text(item.get("language"))
    provider_id = _text(item.get("id"))
    status = item.get("status")
    data = {k: v for k, v in item.items() if k not in _PROVIDER_KEYS}
    data["status"] = status
    violations = validate_template(data)
    if status is None:
        violations["status"] = "the provider gave no status"
    violations.update(_storage_violations(provider_id, _text(item.get("namespace"))))
    outcome = ImportOutcome(
        name=name,
        language=language,
        outcome="rejected",
        status=str(status).upper() if status is not None else None,
        provider_template_id=provider_id,
    )
    if violations or name is None or language is None:
        outcome.violations = violations
        return outcome, None
    definition = definition_of(data)
    outcome.type = template_type(definition)
    fields = {
        "category": definition["category"],
        "status": outcome.status,
        "definition": definition,
        "provider_template_id": provider_id,
        "namespace": _text(item.get("namespace")),
    }
    row = existing.get((name, language))
    if row is None:
        row = Template(name=name, language=language, created_at=now, updated_at=now, **fields)
        existing[(name, language)] = row
        outcome.outcome = "created"
        return outcome, row
    if all(getattr(row, key) == value for key, value in fields.items()):
        outcome.outcome = "unchanged"
        return outcome, row
    for key, value in fields.items():
        setattr(row, key, value)
    row.updated_at = now
    outcome.outcome = "updated"
    return outcome, row


def _storage_violations(provider_id: str | None, namespace: str | None) -> dict[str, str]:
    found: dict[str, str] = {}
    if provider_id is not None and len(provider_id) > 100:
        found["id"] = f"{len(provider_id)} characters, the limit is 100"
    if namespace is not None and len(namespace) > 200:
        found["namespace"] = f"{len(namespace)} characters, the limit is 200"
    return found


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# --- fetching -----------------------------------------------------------------------------------


async def fetch_catalogue(
    runtime: Runtime, config: ProviderConfig, transport: Transport
) -> Catalogue:
    """The provider's templates, every page of them; raises ApiError when it cannot."""
    setup = config.templates or {}
    if config.kind == "msg91":
        return await _fetch_msg91(runtime, config, setup, transport)
    return await _fetch_generic(runtime, config, setup, transport)


def _import_endpoint(
    runtime: Runtime,
    config: ProviderConfig,
    url: str,
    base_headers: Mapping[str, str],
    basic: tuple[str, str] | None = None,
) -> ProviderEndpoint:
    """Headers for the import: ``base_headers``, then the import setup's headers; the import
    setup's Basic auth replaces ``basic``."""
    setup = config.templates or {}
    headers = {**base_headers, **plain_headers(runtime.secrets, setup.get("headers") or {})}
    auth = setup.get("auth") or {}
    if auth.get("type") == "basic" and auth.get("password_enc"):
        basic = (auth.get("username") or "", runtime.secrets.decrypt(auth["password_enc"]))
    return ProviderEndpoint(
        kind=config.kind,
        endpoint_url=url,
        mobile_number=config.mobile_number,
        headers=headers,
        basic_auth=basic,
    )


async def _fetch_msg91(
    runtime: Runtime, config: ProviderConfig, setup: Mapping[str, Any], transport: Transport
) -> Catalogue:
    sending = endpoint_for(runtime, config)
    url = f"{(sending.templates_base or '').rstrip('/')}/get-template-client/{config.mobile_number}"
    # The Authkey rides on the provider's own headers (and Basic auth, if any, with them).
    endpoint = _import_endpoint(runtime, config, url, sending.headers, sending.basic_auth)
    headers = request_headers(endpoint, {"Accept": "application/json"})
    size = int(setup.get("page_size") or 50)
    templates: list[dict[str, Any]] = []
    previous: Any = None
    # unverified: B4 pages with page_size/page_num [I]; a provider that ignores them answers
    # the same list again, which ends the loop instead of importing it twice.
    for page in range(1, MAX_PAGES + 1):
        answer = await _get_json(
            transport, _with_query(url, page_size=size, page_num=page), headers
        )
        items = _msg91_items(answer, url)
        if not items or items == previous:
            break
        templates.extend(_msg91_templates(items))
        if len(items) < size:
            break
        previous = items
    else:
        raise _provider_error(url, None, f"the provider kept answering past {MAX_PAGES} pages")
    return Catalogue(url, templates)


def _msg91_items(answer: Any, url: str) -> list[Any]:
    if not isinstance(answer, Mapping):
        raise _provider_error(url, 200, "the answer is not MSG91's template list", answer)
    if answer.get("hasError") or str(answer.get("status", "success")).lower() == "fail":
        text = str(answer.get("errors") or answer.get("data") or "no reason given")
        if "unauthori" in text.lower():
            raise _auth_error(url, 200, answer)
        raise _provider_error(url, 200, f"MSG91 answered with an error: {text}", answer)
    items = answer.get("data")
    if not isinstance(items, list):
        raise _provider_error(url, 200, "the answer has no data list of templates", answer)
    return items


def _msg91_templates(items: list[Any]) -> Iterator[dict[str, Any]]:
    """B4 groups languages under a name; flatten to one WhatsApp-format template each."""
    for item in items:
        if not isinstance(item, Mapping):
            yield {"name": None, "language": None}
            continue
        languages = item.get("languages")
        if not isinstance(languages, list) or not languages:
            # Reported as rejected (no language) rather than left out.
            yield {"name": item.get("name"), "category": item.get("category"), "language": None}
            continue
        for language in languages:
            entry = language if isinstance(language, Mapping) else {}
            template = {
                "name": item.get("name"),
                "language": entry.get("language"),
                "category": entry.get("category") or item.get("category"),
                "components": entry.get("code"),
                "id": entry.get("id"),
                "status": entry.get("status"),
            }
            for key in ("parameter_format", "namespace"):
                value = entry.get(key, item.get(key))
                if value is not None:
                    template[key] = value
            yield template


def _generic_url(config: ProviderConfig, setup: Mapping[str, Any]) -> str:
    url = setup.get("url")
    if url:
        return str(url)
    if config.kind == "sandbox":
        # The sandbox is the simulator, which serves the A6 catalogue beside its send endpoint.
        parts = urlsplit(config.endpoint_url)
        return urlunsplit((parts.scheme, parts.netloc, "/templates/import", "", ""))
    raise ApiError(
        422,
        "import_not_configured",
        f"provider {config.id} ({config.nickname}) has no template import URL; set "
        "templates.url on the provider (a GET that answers WhatsApp's template list, A6)",
        fields={"templates.url": "required to import templates from a generic provider"},
    )


async def _fetch_generic(
    runtime: Runtime, config: ProviderConfig, setup: Mapping[str, Any], transport: Transport
) -> Catalogue:
    url = _generic_url(config, setup)
    endpoint = _import_endpoint(runtime, config, url, {})
    headers = request_headers(endpoint, {"Accept": "application/json"})
    size = int(setup.get("page_size") or 50)
    templates: list[dict[str, Any]] = []
    after: str | None = None
    seen: set[str] = set()
    for _page in range(MAX_PAGES):
        query: dict[str, Any] = {"limit": size}
        if after is not None:
            query["after"] = after
        answer = await _get_json(transport, _with_query(url, **query), headers)
        if not isinstance(answer, Mapping) or not isinstance(answer.get("data"), list):
            raise _provider_error(url, 200, "the answer is not a template list (data[])", answer)
        templates.extend(
            dict(item) if isinstance(item, Mapping) else {"name": None} for item in answer["data"]
        )
        after = _after_cursor(answer.get("paging"))
        if not answer["data"] or not after or after in seen:
            return Catalogue(url, templates)
        seen.add(after)
    raise _provider_error(url, None, f"the provider kept answering past {MAX_PAGES} pages")


def _after_cursor(paging: Any) -> str | None:
    """A6's ``paging.cursors.after``: the next page's cursor, None on the last page."""
    cursors = paging.get("cursors") if isinstance(paging, Mapping) else None
    after = cursors.get("after") if isinstance(cursors, Mapping) else None
    return str(after) if after else None


def _with_query(url: str, **params: Any) -> str:
    """``url`` with ``params`` set, keeping the query it already has (``?wabaNumber=...``)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update({key: str(value) for key, value in params.items()})
    return urlunsplit(parts._replace(query=urlencode(query)))


async def _get_json(transport: Transport, url: str, headers: dict[str, str]) -> Any:
    try:
        response = await transport.send(HttpRequest("GET", url, headers))
    except (NotSent, InDoubt) as exc:
        raise ApiError(
            502,
            "provider_unreachable",
            f"the provider's template list at {_shown_url(url)} did not answer: {exc}",
        ) from exc
    if response.status in (401, 403):
        raise _auth_error(url, response.status, response.body)
    if not 200 <= response.status < 300:
        raise _provider_error(url, response.status, "the provider refused", response.body)
    try:
        return orjson.loads(response.body)
    except orjson.JSONDecodeError as exc:
        raise _provider_error(
            url, response.status, "the answer is not JSON", response.body
        ) from exc


def _shown_url(url: str) -> str:
    # Query strings may carry tokens; the host and path are enough to find the problem.
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _answer_text(body: Any) -> str:
    if isinstance(body, bytes):
        text = body.decode("utf-8", "replace")
    elif isinstance(body, str):
        text = body
    else:
        text = orjson.dumps(body).decode()
    return text[:_SHOWN_BODY]


def _auth_error(url: str, status: int, body: Any) -> ApiError:
    answer = _answer_text(body)
    return ApiError(
        422,
        "provider_auth_failed",
        f"the provider refused our credentials for its template list at {_shown_url(url)} "
        f"(HTTP {status}: {answer}); check the provider's Authkey header or templates.auth",
        extra={"provider_status": status, "provider_response": answer},
    )


def _provider_error(url: str, status: int | None, what: str, body: Any = None) -> ApiError:
    answer = _answer_text(body) if body is not None else None
    shown = f" (HTTP {status}: {answer})" if status is not None and answer else ""
    return ApiError(
        502,
        "provider_error",
        f"importing templates from {_shown_url(url)} failed: {what}{shown}",
        extra={"provider_status": status, "provider_response": answer},
    )
