"""GraphQL over HTTP, per the GraphQL-over-HTTP spec.

Strawberry's own view answers request errors with plain-text bodies and always 200
for invalid documents; clients of ours get a GraphQL error with ``extensions.code``
and the status the spec asks for:

* ``application/graphql-response+json`` (when the client accepts it): 400 for an
  unparsable or invalid document or bad variables (no ``data`` key), 200 once
  execution started.
* ``application/json``: 200 for any well-formed GraphQL response.
* Either way: 400 malformed JSON / batching / bad params, 401 bad credentials,
  405 mutation over GET, 406 nothing acceptable, 413 oversized body, 415 content
  type, 429 rate limited.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from cognitionos._json import dumps
from cognitionos.context import Context, Services
from cognitionos.dataloaders import Loaders
from cognitionos.db.models.auth import User
from cognitionos.observability import bind_request, get_logger
from cognitionos.pubsub import RESYNC, SlowSubscriber
from cognitionos.services.auth import (
    ClientInfo,
    CredentialChange,
    Principal,
    credential_from_headers,
)
from cognitionos.services.errors import (
    BadUserInput,
    CognitionError,
    NotFound,
    RateLimited,
    Unauthenticated,
)
from cognitionos.subscriptions.channels import credentials_channel
from cognitionos.web.schema import CognitionSchema

__all__ = ["GRAPHQL_RESPONSE_JSON", "GraphQLHTTP"]

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
# GraphiQL and its scripts are served from /static: no CDN needed (see static/graphiql).
GRAPHIQL_HTML = (Path(__file__).parent / "static" / "graphiql.html").read_text()
APPLICATION_JSON = "application/json"
log = get_logger("cognitionos.graphql")


class RequestError(Exception):
    """A request that never reaches execution; answered with one GraphQL error."""

    def __init__(
        self, status: int, error: CognitionError, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(error.message)
        self.status = status
        self.error = error
        self.headers = headers or {}


def _bad(message: str, status: int = 400, **extensions: Any) -> RequestError:
    return RequestError(status, BadUserInput(message, **extensions))


def _accepted_types(accept: str | None) -> list[str]:
    """Media types in the client's order of preference (q-values honoured)."""
    if not accept:
        return [APPLICATION_JSON]
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0:
            ranked.append((-q, index, media.lower()))
    return [media for _, _, media in sorted(ranked)]


def negotiate(accept: str | None) -> str | None:
    for media in _accepted_types(accept):
        if media in (GRAPHQL_RESPONSE_JSON, APPLICATION_JSON):
            return media
        if media in ("*/*", "application/*"):
            return APPLICATION_JSON  # the widest-compatible choice for a wildcard
    return None


class GraphQLHTTP:
    """The ``/graphql`` endpoint for GET and POST; created in the app lifespan."""

    def __init__(self, schema: CognitionSchema, services: Services) -> None:
        self.schema = schema
        self.services = services
        self._follower: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._follower = asyncio.create_task(
            self._follow_credential_changes(), name="http-credential-changes"
        )

    async def stop(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower

    async def _follow_credential_changes(self) -> None:
        """Drop what the credential cache knows of a user as soon as a change is announced,
        and all of it after the pub/sub connection came back (announcements may have been
        lost). The stamps make the next request read anyway; this frees the memory and is
        a second line when Redis lost a stamp."""
        cache = self.services.credentials
        while True:
            try:
                async with self.services.pubsub.subscribe(credentials_channel()) as subscriber:
                    while True:
                        message = await subscriber.get()
                        if message is RESYNC:
                            cache.clear()
                            continue
                        try:
                            cache.forget(CredentialChange.from_message(message).user_id)
                        except (KeyError, TypeError, ValueError):
                            cache.clear()
            except SlowSubscriber:
                cache.clear()

    async def __call__(self, request: Request) -> Response:
        request_id: str = request.state.request_id
        media = negotiate(request.headers.get("accept"))
        if request.method == "GET" and self._wants_ide(request):
            if self.services.settings.graphiql:
                return HTMLResponse(GRAPHIQL_HTML)
            return self._error_response(
                RequestError(404, NotFound("GraphiQL is disabled on this server")),
                media,
                request_id,
            )
        try:
            if media is None:
                raise RequestError(
                    406,
                    _bad(
                        f"cannot answer with any of {request.headers.get('accept')!r}; "
                        f"accept {GRAPHQL_RESPONSE_JSON} or {APPLICATION_JSON}"
                    ).error,
                )
            params = await self._read_params(request)
            context = await self._context(request, request_id)
            return await self._execute(request, params, context, media)
        except RequestError as exc:
            return self._error_response(exc, media, request_id)

    # -- request parsing -------------------------------------------------------

    @staticmethod
    def _wants_ide(request: Request) -> bool:
        return "query" not in request.query_params and "text/html" in request.headers.get(
            "accept", ""
        )

    async def _read_params(self, request: Request) -> dict[str, Any]:
        if request.method == "GET":
            return self._params_from_query(request)
        if request.method != "POST":
            raise RequestError(
                405, _bad("GraphQL accepts GET and POST only").error, {"Allow": "GET, POST"}
            )
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in (APPLICATION_JSON, GRAPHQL_RESPONSE_JSON):
            raise _bad(
                f"unsupported content type {content_type or '(none)'!r}: send application/json",
                status=415,
            )
        body = await self._read_body(request)
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _bad(f"malformed JSON body: {exc}") from None
        if isinstance(data, list):
            raise _bad("batched requests are not supported: send one operation per request")
        if not isinstance(data, dict):
            raise _bad("the request body must be a JSON object")
        return data

    async def _read_body(self, request: Request) -> bytes:
        limit = self.services.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise _bad(f"request body is larger than {limit} bytes", status=413)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _bad(f"request body is larger than {limit} bytes", status=413)
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _params_from_query(request: Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query_params)
        for name in ("variables", "extensions"):
            if params.get(name):
                try:
                    params[name] = json.loads(params[name])
                except json.JSONDecodeError as exc:
                    raise _bad(f"{name} is not valid JSON: {exc}", field=name) from None
        return params

    async def _context(self, request: Request, request_id: str) -> Context:
        client = ClientInfo(
            ip=request.client.host if request.client else None,
            user_agent=request.headers.get("user-agent"),
        )
        services = self.services
        principal: Principal | None = None
        user: User | None = None
        try:
            credential = credential_from_headers(
                request.headers.get("authorization"), request.headers.get("x-api-key")
            )
            if credential is None:
                await self._rate_limit(f"ip:{client.ip}")
            else:
                # The user's current role and status, as of this request: the cache's
                # entries are checked against the stamps read with the rate limit.
                principal, user = await services.credentials.identify(
                    credential, read_stamps=self._rate_limit_user
                )
                method = "api_key" if principal.api_key_id else "jwt"
                services.metrics.auth_results.labels(method, "success").inc()
                bind_request(user_id=str(principal.user_id))
        except Unauthenticated as exc:
            services.metrics.auth_results.labels(
                "token", str(exc.extensions.get("reason", "failure"))
            ).inc()
            raise RequestError(401, exc, {"WWW-Authenticate": "Bearer"}) from None
        return Context(
            services=services,
            request=request,
            request_id=request_id,
            client=client,
            loaders=Loaders(services.reader, principal),
            principal=principal,
            user=user,
        )

    async def _rate_limit_user(
        self, user_id: uuid.UUID, read: Sequence[str]
    ) -> tuple[bytes | None, ...]:
        return await self._rate_limit(f"user:{user_id}", read)

    async def _rate_limit(self, who: str, read: Sequence[str] = ()) -> tuple[bytes | None, ...]:
        """One hit on ``who``'s GraphQL limit (RequestError 429 over it), reading ``read``
        in the same round trip."""
        settings = self.services.settings
        try:
            return await self.services.rate_limiter.check(
                f"graphql:{who}",
                limit=settings.graphql_rate_limit,
                window_seconds=settings.rate_limit_window_seconds,
                what="requests",
                read=read,
            )
        except RateLimited as exc:
            raise RequestError(
                429, exc, {"Retry-After": str(exc.extensions["retryAfter"])}
            ) from None

    # -- execution -----------------------------------------------------------------

    async def _execute(
        self, request: Request, params: dict[str, Any], context: Context, media: str
    ) -> Response:
        query = params.get("query")
        variables = params.get("variables")
        operation_name = params.get("operationName")
        if not isinstance(query, str) or not query.strip():
            raise _bad("the request has no GraphQL query", field="query")
        if variables is not None and not isinstance(variables, dict):
            raise _bad("variables must be a JSON object", field="variables")
        if operation_name is not None and not isinstance(operation_name, str):
            raise _bad("operationName must be a string", field="operationName")
        extensions = params.get("extensions")
        if extensions is not None and not isinstance(extensions, dict):
            raise _bad("extensions must be a JSON object", field="extensions")
        allowed: Iterable[OperationType] = (
            (OperationType.QUERY,)
            if request.method == "GET"
            else (OperationType.QUERY, OperationType.MUTATION)
        )
        started = time.perf_counter()
        try:
            result = await self.schema.execute(
                query,
                variable_values=variables,
                context_value=context,
                operation_name=operation_name,
                allowed_operation_types=allowed,
            )
        except InvalidOperationTypeError as exc:
            if exc.operation_type is OperationType.SUBSCRIPTION:
                raise _bad("subscriptions are served over websockets at /graphql") from None
            raise RequestError(
                405,
                _bad("mutations must be sent with POST").error,
                {"Allow": "POST"},
            ) from None
        except CannotGetOperationTypeError as exc:
            raise _bad(exc.as_http_error_reason(), field="operationName") from None
        except MissingQueryError:
            raise _bad("the request has no GraphQL query", field="query") from None
        op_type, op_name = context.operation_type, context.operation_label
        elapsed = time.perf_counter() - started
        metrics = self.services.metrics
        metrics.graphql_duration.labels(op_type, op_name).observe(elapsed)

        errors = [e.formatted for e in result.errors or []]
        request_error = result.data is None and bool(errors) and not context.executed
        if not request_error and result.data is None and errors:
            # Variable coercion fails inside execute(): still a request error.
            request_error = all(e.get("path") is None for e in errors)
        outcome = "request_error" if request_error else ("error" if errors else "ok")
        metrics.graphql_operations.labels(op_type, op_name, outcome).inc()
        body: dict[str, Any] = {}
        if not request_error:
            body["data"] = result.data
        if errors:
            body["errors"] = errors
        status = 200
        if request_error and media == GRAPHQL_RESPONSE_JSON:
            refused = all(e.get("extensions", {}).get("code") == "FORBIDDEN" for e in errors)
            status = 403 if refused else 400
        return self._json(body, status, media, context.request_id)

    # -- responses -------------------------------------------------------------------

    def _json(
        self,
        body: dict[str, Any],
        status: int,
        media: str | None,
        request_id: str,
        headers: dict[str, str] | None = None,
    ) -> Response:
        return Response(
            dumps(body),
            status_code=status,
            media_type=media or APPLICATION_JSON,
            headers={"X-Request-ID": request_id, **(headers or {})},
        )

    def _error_response(self, exc: RequestError, media: str | None, request_id: str) -> Response:
        error = GraphQLError(exc.error.message, extensions=exc.error.as_extensions())
        formatted = error.formatted
        formatted.setdefault("extensions", {})["requestId"] = request_id
        self.services.metrics.graphql_errors.labels(formatted["extensions"]["code"]).inc()
        log.info("graphql request rejected", status=exc.status, reason=exc.error.message)
        return self._json({"errors": [formatted]}, exc.status, media, request_id, exc.headers)
