"""Body size and content-type guards, as ASGI middleware so oversize bodies are never buffered."""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from waconnect.web.errors import error_body


class BodyGuard:
    """Refuses bodies over their area's limit (API 1 MB, callbacks 5 MB) and non-JSON API bodies."""

    def __init__(self, app: ASGIApp, api_limit: int, callback_limit: int) -> None:
        self.app = app
        self.api_limit = api_limit
        self.callback_limit = callback_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/callbacks/"):
            limit = self.callback_limit
        elif path.startswith("/api/"):
            limit = self.api_limit
        else:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        length = headers.get("content-length")
        upload = path in UPLOAD_PATHS and _is_upload(headers.get("content-type", ""))
        if length is not None and length.isdigit() and int(length) > limit and not upload:
            await _reply(send, 413, "payload_too_large", f"the body is over {limit} bytes")
            return
        if path.startswith("/api/") and not _is_api_body_type(headers.get("content-type", "")):
            await _reply(
                send,
                415,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            )
            return
        if headers.get("content-type", "").startswith(("multipart/", "text/csv")):
            # Uploads stream to their handler, which enforces its own limit.
            await self.app(scope, receive, send)
            return
        body = await read_body(receive, limit)
        if body is None:
            await _reply(send, 413, "payload_too_large", f"the body is over {limit} bytes")
            return
        await self.app(scope, _replay(body, receive), send)


# Endpoints whose uploads may declare any length: their handlers stream with their own limit.
# Elsewhere a big declared length is refused before anything is read.
UPLOAD_PATHS = ("/api/v1/profiles/import",)


def _is_upload(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() in ("multipart/form-data", "text/csv")


def _is_api_body_type(content_type: str) -> bool:
    kind = content_type.split(";")[0].strip().lower()
    # Uploads (CSV import) stream as multipart or text/csv with their own limit.
    return kind in ("application/json", "multipart/form-data", "text/csv", "")


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None once it passes the limit (chunked bodies carry no length)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def wrapped() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return wrapped


async def _reply(send: Send, status: int, code: str, message: str) -> None:
    body = orjson.dumps(error_body(code, message))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
