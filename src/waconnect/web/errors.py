"""One JSON error shape everywhere: ``{"error": {"code", "message", "fields"?}}``.

Every message is meant for a person to act on; nothing here ever returns a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("waconnect.web")


class ApiError(Exception):
    """An error a caller can act on; raised by services and routes alike."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.extra = extra or {}


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def conflict(message: str, **extra: Any) -> ApiError:
    return ApiError(409, "conflict", message, extra=extra)


def invalid(fields: dict[str, str], message: str | None = None) -> ApiError:
    text = message or "; ".join(f"{name}: {why}" for name, why in fields.items())
    return ApiError(422, "validation_error", text, fields=fields)


def invalid_from(exc: ValidationError) -> ApiError:
    """A validation error raised inside a service: the same 422 as a bad request body."""
    fields: dict[str, str] = {}
    for err in exc.errors():
        fields.setdefault(_field_path(err.get("loc", ())), _validation_message(dict(err)))
    return invalid(fields)


def error_body(
    code: str, message: str, fields: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    error.update(extra)
    return {"error": error}


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(part) for part in loc if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _validation_message(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required"
    message = str(err.get("msg", "invalid"))
    # pydantic prefixes custom errors with "Value error, "; the reason is what follows.
    return message.removeprefix("Value error, ")


def _from_validation(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(err.get("type") == "json_invalid" for err in errors):
        detail = next(err for err in errors if err.get("type") == "json_invalid")
        reason = (detail.get("ctx") or {}).get("error", "invalid JSON")
        return JSONResponse(
            error_body("malformed_json", f"the request body is not valid JSON: {reason}"),
            status_code=400,
        )
    if any(
        tuple(err.get("loc", ())) == ("body",) and isinstance(err.get("input"), bytes)
        for err in errors
    ):
        # The body reached a JSON endpoint unparsed: it was sent as another media type
        # (a form, multipart) that the body guard lets through for upload endpoints.
        return JSONResponse(
            error_body(
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ),
            status_code=415,
        )
    fields: dict[str, str] = {}
    for err in errors:
        fields.setdefault(_field_path(err.get("loc", ())), _validation_message(err))
    message = "; ".join(f"{name}: {why}" for name, why in fields.items())
    return JSONResponse(error_body("validation_error", message, fields), status_code=422)


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, exc.fields, **exc.extra), status_code=exc.status
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _from_validation(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 404 and message == "Not Found":
            message = "no such endpoint; see /docs for the API"
        if exc.status_code == 405:
            message = "this method is not allowed on this endpoint; see /docs"
        if exc.status_code == 400 and message == "There was an error parsing the body":
            # FastAPI's answer to a body that is not even text (bytes that are not UTF-8).
            kind = _request.headers.get("content-type", "application/json").split(";")[0]
            if kind.strip().lower() in ("application/json", ""):
                code = "malformed_json"
                message = "the request body is not valid JSON: it is not UTF-8 text"
        return JSONResponse(
            error_body(code, message), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body(
                "internal_error",
                "something went wrong on our side; the error was logged on the server",
            ),
            status_code=500,
        )
