"""Provider configs: create, read, change, delete, rotate the callback token.

Secrets (the basic-auth password, secret header values, the callback header value) are encrypted
here on the way in and masked here on the way out; nothing else touches them in clear except
``endpoint_for`` which hands the dispatcher what it needs to send.
"""

from __future__ import annotations

import ipaddress
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from waconnect.crypto import SecretBox, is_masked, is_secret_name, mask
from waconnect.db.base import is_storable_id
from waconnect.providers.adapters.base import ProviderEndpoint
from waconnect.providers.models import ProviderConfig
from waconnect.providers.schemas import (
    AuthBasic,
    AutoReply,
    CallbackUrls,
    ProviderCreate,
    ProviderOptions,
    ProviderOut,
    ProviderPatch,
    TemplateImportSetup,
)
from waconnect.runtime import Runtime
from waconnect.web.errors import conflict, invalid, not_found

DEFAULT_ENDPOINTS = {
    "msg91": "https://api.msg91.com/api/v5/whatsapp",
}
DEFAULT_MSG91_TEMPLATE_BASE = "https://control.msg91.com/api/v5/whatsapp"
SIMULATOR_GENERIC_PATH = "/api/v5/whatsapp//outbound/clevertap/"
_JSON_DEFAULTS = {"Content-Type": "application/json", "Accept": "application/json"}


# --- validation that needs the deployment's settings -------------------------------------------


def _check_endpoint(url: str, allow_http: bool, field: str = "endpoint_url") -> str:
    try:
        parts = urlsplit(url.strip())
        _port = parts.port  # raises on a port that is not a number in 0..65535
    except ValueError:  # "http://[::1", "https://host:99999"
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid(
            {field: f"must be an http(s) URL such as https://api.example.com/send, got {url!r}"}
        )
    if parts.scheme == "http" and not (allow_http or _is_loopback(parts.hostname)):
        raise invalid(
            {
                field: "must use https (http is only allowed for loopback hosts, or when "
                "WACONNECT_ALLOW_HTTP_ENDPOINTS is set)"
            }
        )
    return url.strip()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _endpoint_or_default(kind: str, url: str | None, runtime: Runtime) -> str:
    if url:
        return url
    if kind == "msg91":
        return DEFAULT_ENDPOINTS["msg91"]
    if kind == "sandbox":
        return runtime.settings.simulator_url.rstrip("/") + SIMULATOR_GENERIC_PATH
    raise invalid({"endpoint_url": "required for a generic provider: the provider's HTTP endpoint"})


# --- secrets in and out --------------------------------------------------------------------------


def _store_headers(
    box: SecretBox, given: dict[str, str], stored: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Encrypt secret values; a masked value sent back keeps the stored secret of that name."""
    stored = stored or {}
    merged = dict(given)
    for name, value in _JSON_DEFAULTS.items():
        if not any(key.lower() == name.lower() for key in merged):
            merged[name] = value
    result: dict[str, Any] = {}
    for name, value in merged.items():
        if is_masked(value):
            previous = stored.get(name)
            if previous is None:
                raise invalid(
                    {f"headers.{name}": "a masked value was sent, but no secret is stored"}
                )
            result[name] = previous
        elif is_secret_name(name):
            result[name] = {"enc": box.encrypt(value)}
        else:
            result[name] = {"value": value}
    return result


def _shown_headers(box: SecretBox, stored: dict[str, Any]) -> dict[str, str]:
    return {
        name: mask(box.decrypt(entry["enc"])) or "" if "enc" in entry else entry["value"]
        for name, entry in stored.items()
    }


def plain_headers(box: SecretBox, stored: dict[str, Any]) -> dict[str, str]:
    return {
        name: box.decrypt(entry["enc"]) if "enc" in entry else entry["value"]
        for name, entry in stored.items()
    }


def _store_auth(box: SecretBox, config: ProviderConfig, auth: Any) -> None:
    if isinstance(auth, AuthBasic):
        if is_masked(auth.password):
            if config.auth_password_enc is None:
                raise invalid({"auth.password": "a masked password was sent but none is stored"})
        else:
            config.auth_password_enc = box.encrypt(auth.password)
        config.auth_type, config.auth_username = "basic", auth.username
    else:
        config.auth_type, config.auth_username, config.auth_password_enc = "none", None, None


def _store_templates(
    box: SecretBox, setup: TemplateImportSetup | None, stored: dict[str, Any] | None
) -> dict[str, Any]:
    if setup is None:
        return {}
    stored = stored or {}
    data = setup.model_dump(mode="json", exclude={"auth", "headers"})
    data["headers"] = (
        _store_headers(box, setup.headers, stored.get("headers")) if setup.headers else {}
    )
    if isinstance(setup.auth, AuthBasic):
        password = setup.auth.password
        if is_masked(password):
            previous = (stored.get("auth") or {}).get("password_enc")
            if previous is None:
                raise invalid(
                    {"templates.auth.password": "a masked password was sent but none is stored"}
                )
            password_enc = previous
        else:
            password_enc = box.encrypt(password)
        data["auth"] = {
            "type": "basic",
            "username": setup.auth.username,
            "password_enc": password_enc,
        }
    else:
        data["auth"] = {"type": "none"}
    return data


def _shown_templates(box: SecretBox, stored: dict[str, Any]) -> dict[str, Any] | None:
    if not stored:
        return None
    shown = {key: value for key, value in stored.items() if key not in ("auth", "headers")}
    auth = stored.get("auth") or {"type": "none"}
    if auth.get("type") == "basic":
        shown["auth"] = {
            "type": "basic",
            "username": auth["username"],
            "password": mask(box.decrypt(auth["password_enc"])),
        }
    else:
        shown["auth"] = {"type": "none"}
    shown["headers"] = _shown_headers(box, stored.get("headers") or {})
    return shown


# --- reading ---


def callback_urls(runtime: Runtime, config: ProviderConfig) -> CallbackUrls:
    base = f"{runtime.settings.resolved_public_url}/callbacks/{config.id}/{config.callback_token}"
    valid_until = config.previous_token_expires_at if config.previous_callback_token else None
    if valid_until is not None and valid_until <= runtime.clock.now():
        valid_until = None  # the old URL no longer works: nothing to tell the user about it
    return CallbackUrls(
        inbound_url=f"{base}/inbound",
        delivery_url=f"{base}/delivery",
        previous_token_valid_until=valid_until,
    )


def to_out(runtime: Runtime, config: ProviderConfig) -> ProviderOut:
    box = runtime.secrets
    auth: dict[str, Any] = {"type": config.auth_type}
    if config.auth_type == "basic":
        password = box.decrypt(config.auth_password_enc) if config.auth_password_enc else None
        auth.update(username=config.auth_username, password=mask(password))
    callback_header = None
    if config.callback_header_name and config.callback_header_value_enc:
        value = box.decrypt(config.callback_header_value_enc)
        callback_header = {"name": config.callback_header_name, "value": mask(value) or ""}
    return ProviderOut(
        id=config.id,
        nickname=config.nickname,
        kind=config.kind,  # type: ignore[arg-type]
        mobile_number=config.mobile_number,
        request_type=config.request_type,
        endpoint_url=config.endpoint_url,
        auth=auth,
        headers=_shown_headers(box, config.headers or {}),
        callback_header=callback_header,
        templates=_shown_templates(box, config.templates or {}),
        is_default=config.is_default,
        auto_reply=AutoReply(enabled=config.auto_reply_enabled, text=config.auto_reply_text),
        max_concurrency=config.max_concurrency,
        options=ProviderOptions.model_validate(config.options or {}),
        callbacks=callback_urls(runtime, config),
        created_at=config.created_at,
        updated_at=config.updated_at,
    )


async def get_provider(
    session: AsyncSession, workspace_id: int, provider_id: int
) -> ProviderConfig:
    config = await session.get(ProviderConfig, provider_id) if is_storable_id(provider_id) else None
    # Another workspace's config answers exactly like a missing one.
    if config is None or config.workspace_id != workspace_id:
        raise not_found(f"provider {provider_id}")
    return config


async def list_providers(session: AsyncSession, workspace_id: int) -> list[ProviderConfig]:
    rows = await session.scalars(
        select(ProviderConfig)
        .where(ProviderConfig.workspace_id == workspace_id)
        .order_by(ProviderConfig.id)
    )
    return list(rows)


async def default_provider(session: AsyncSession, workspace_id: int) -> ProviderConfig | None:
    return await session.scalar(
        select(ProviderConfig).where(
            ProviderConfig.workspace_id == workspace_id, ProviderConfig.is_default
        )
    )


# --- writing ---


async def _clear_default(session: AsyncSession, workspace_id: int) -> None:
    await session.execute(
        update(ProviderConfig)
        .where(ProviderConfig.workspace_id == workspace_id, ProviderConfig.is_default)
        .values(is_default=False)
    )


async def _flush_unique(session: AsyncSession, nickname: str) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        await session.rollback()
        message = str(exc.orig).lower()
        if "nickname" in message:
            raise conflict(
                f"a provider named {nickname!r} exists already in this workspace"
            ) from exc
        raise conflict(
            "another provider was made the default at the same moment; try again"
        ) from exc


async def create_provider(
    session: AsyncSession, runtime: Runtime, workspace_id: int, body: ProviderCreate
) -> ProviderConfig:
    allow_http = runtime.settings.allow_http_endpoints
    endpoint = _check_endpoint(
        _endpoint_or_default(body.kind, body.endpoint_url, runtime), allow_http
    )
    _check_template_urls(body.templates, allow_http)
    now = runtime.clock.now()
    count = await session.scalar(
        select(func.count())
        .select_from(ProviderConfig)
        .where(ProviderConfig.workspace_id == workspace_id)
    )
    make_default = body.is_default or count == 0  # the first config of a workspace is the default
    if make_default:
        await _clear_default(session, workspace_id)
    config = ProviderConfig(
        workspace_id=workspace_id,
        nickname=body.nickname,
        kind=body.kind,
        mobile_number=body.mobile_number,
        request_type="POST",
        endpoint_url=endpoint,
        headers=_store_headers(runtime.secrets, body.headers),
        templates=_store_templates(runtime.secrets, body.templates, None),
        is_default=make_default,
        auto_reply_enabled=body.auto_reply.enabled,
        auto_reply_text=body.auto_reply.text,
        max_concurrency=body.max_concurrency,
        options=body.options.model_dump(),
        callback_token=new_token(),
        created_at=now,
        updated_at=now,
    )
    _store_auth(runtime.secrets, config, body.auth)
    _store_callback_header(runtime.secrets, config, body.callback_header)
    session.add(config)
    await _flush_unique(session, body.nickname)
    return config


def _check_template_urls(setup: TemplateImportSetup | None, allow_http: bool) -> None:
    if setup is None:
        return
    if setup.url:
        _check_endpoint(setup.url, allow_http, "templates.url")
    if setup.api_base:
        _check_endpoint(setup.api_base, allow_http, "templates.api_base")


def _store_callback_header(box: SecretBox, config: ProviderConfig, header: Any) -> None:
    if header is None:
        config.callback_header_name, config.callback_header_value_enc = None, None
        return
    if is_masked(header.value):
        if config.callback_header_value_enc is None:
            raise invalid({"callback_header.value": "a masked value was sent but none is stored"})
    else:
        config.callback_header_value_enc = box.encrypt(header.value)
    config.callback_header_name = header.name


async def update_provider(
    session: AsyncSession,
    runtime: Runtime,
    workspace_id: int,
    provider_id: int,
    body: ProviderPatch,
) -> ProviderConfig:
    config = await get_provider(session, workspace_id, provider_id)
    given = body.model_fields_set
    allow_http = runtime.settings.allow_http_endpoints
    if "endpoint_url" in given:
        config.endpoint_url = _check_endpoint(
            _endpoint_or_default(config.kind, body.endpoint_url, runtime), allow_http
        )
    for name in ("nickname", "mobile_number", "max_concurrency"):
        value = getattr(body, name)
        if name in given:
            if value is None:
                raise invalid({name: "must not be null"})
            setattr(config, name, value)
    if "auth" in given:
        _store_auth(runtime.secrets, config, body.auth)
    if "headers" in given:
        config.headers = _store_headers(runtime.secrets, body.headers or {}, config.headers)
    if "callback_header" in given:
        _store_callback_header(runtime.secrets, config, body.callback_header)
    if "templates" in given:
        _check_template_urls(body.templates, allow_http)
        config.templates = _store_templates(runtime.secrets, body.templates, config.templates)
    if "auto_reply" in given and body.auto_reply is not None:
        config.auto_reply_enabled = body.auto_reply.enabled
        config.auto_reply_text = body.auto_reply.text
    if "options" in given and body.options is not None:
        config.options = body.options.model_dump()
    if "is_default" in given and body.is_default is not None:
        await _set_default(session, config, body.is_default)
    config.updated_at = runtime.clock.now()
    await _flush_unique(session, config.nickname)
    return config


async def _set_default(session: AsyncSession, config: ProviderConfig, make_default: bool) -> None:
    if make_default and not config.is_default:
        await _clear_default(session, config.workspace_id)
        config.is_default = True
    elif not make_default and config.is_default:
        raise conflict(
            "this provider is the workspace default; make another provider the default instead"
        )


async def delete_provider(session: AsyncSession, workspace_id: int, provider_id: int) -> None:
    config = await get_provider(session, workspace_id, provider_id)
    was_default = config.is_default
    await session.delete(config)
    await session.flush()
    if was_default:
        # Keep "a workspace with providers has a default": the oldest remaining one takes over.
        successor = await session.scalar(
            select(ProviderConfig)
            .where(ProviderConfig.workspace_id == workspace_id)
            .order_by(ProviderConfig.id)
            .limit(1)
        )
        if successor is not None:
            successor.is_default = True
            await session.flush()


def new_token() -> str:
    return secrets.token_urlsafe(24)


async def rotate_token(
    session: AsyncSession,
    runtime: Runtime,
    workspace_id: int,
    provider_id: int,
    grace_hours: float | None,
) -> ProviderConfig:
    config = await get_provider(session, workspace_id, provider_id)
    hours = runtime.settings.token_grace_hours if grace_hours is None else grace_hours
    now = runtime.clock.now()
    if hours > 0:
        # Reports already in flight to the old URL are not lost during the grace period.
        config.previous_callback_token = config.callback_token
        config.previous_token_expires_at = now + timedelta(hours=hours)
    else:
        config.previous_callback_token = None
        config.previous_token_expires_at = None
    config.callback_token = new_token()
    config.updated_at = now
    await session.flush()
    return config


async def provider_for_callback(
    session: AsyncSession, runtime: Runtime, provider_id: int, token: str
) -> ProviderConfig | None:
    """The config whose current token, or previous token within its grace period, is ``token``."""
    if not is_storable_id(provider_id):
        return None
    config = await session.get(ProviderConfig, provider_id)
    if config is None:
        return None
    if secrets.compare_digest(config.callback_token, token):
        return config
    previous = config.previous_callback_token
    if (
        previous
        and config.previous_token_expires_at is not None
        and runtime.clock.now() < config.previous_token_expires_at
        and secrets.compare_digest(previous, token)
    ):
        return config
    return None


def check_callback_header(runtime: Runtime, config: ProviderConfig, headers: Any) -> bool:
    if not config.callback_header_name or not config.callback_header_value_enc:
        return True
    expected = runtime.secrets.decrypt(config.callback_header_value_enc)
    got = headers.get(config.callback_header_name) or ""
    return secrets.compare_digest(expected.encode(), got.encode())


def endpoint_for(runtime: Runtime, config: ProviderConfig) -> ProviderEndpoint:
    """What the dispatcher's adapter needs, secrets decrypted: only the dispatcher calls this."""
    box = runtime.secrets
    basic = None
    if config.auth_type == "basic" and config.auth_password_enc:
        basic = (config.auth_username or "", box.decrypt(config.auth_password_enc))
    templates = config.templates or {}
    templates_base = templates.get("api_base") or _default_templates_base(config)
    return ProviderEndpoint(
        kind=config.kind,
        endpoint_url=config.endpoint_url,
        mobile_number=config.mobile_number,
        headers=plain_headers(box, config.headers or {}),
        basic_auth=basic,
        batch_size=int((config.options or {}).get("batch_size", 100)),
        templates_base=templates_base,
    )


def _default_templates_base(config: ProviderConfig) -> str | None:
    """MSG91 lists templates on control.msg91.com while it sends on api.msg91.com; a config
    pointed elsewhere (a proxy, the simulator) serves both from its own base."""
    if config.kind != "msg91":
        return None
    if config.endpoint_url.rstrip("/") == DEFAULT_ENDPOINTS["msg91"]:
        return DEFAULT_MSG91_TEMPLATE_BASE
    return config.endpoint_url
