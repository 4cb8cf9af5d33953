"""The HTTP glue: the only module that knows Starlette.

It turns an ASGI request into a ``FhirRequest`` (authentication, content negotiation, JSON
parsing with orjson), runs the engine in a worker thread (the store is synchronous) and writes
the ``FhirResponse`` back as ``application/fhir+json``. Mount it under ``/fhir`` with
``fhir_routes(app)``, which also answers the bare ``/fhir`` (a transaction is POSTed there).

The absolute base URL of links and ``Location`` is the request's own (scheme, host and mount
path) in development, and ``settings.base_url`` + the mount path in production, where the Host
header comes from a proxy and is not to be trusted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

from parcours.auth import Authenticator
from parcours.errors import InvalidInput, ParcoursError
from parcours.fhir.request import FhirRequest, FhirResponse
from parcours.fhir.router import FhirEngine, error_response
from parcours.security.principal import Principal

if TYPE_CHECKING:
    from parcours.fhir.context import FhirContext

__all__ = ["FhirApp", "create_fhir_app", "fhir_routes"]

MEDIA_TYPE = "application/fhir+json"
_JSON_TYPES = frozenset(
    {
        "application/fhir+json",
        "application/json",
        "application/json+fhir",
        "application/json-patch+json",
    }
)
_FORMATS = frozenset({"json", "application/json", "application/fhir+json", "fhir+json"})
_FORM = "application/x-www-form-urlencoded"
MAX_BODY = 32 * 1024 * 1024
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class NotAcceptable(ParcoursError):
    """The client asks for a format we do not produce (XML, RDF...)."""

    status = 406
    issue_code = "not-supported"
    ack_code = "AE"


class UnsupportedMediaType(ParcoursError):
    """The body is in a format we do not read."""

    status = 415
    issue_code = "not-supported"
    ack_code = "AE"


class PayloadTooLarge(ParcoursError):
    """The body exceeds the configured maximum."""

    status = 413
    issue_code = "too-costly"
    ack_code = "AE"


class _Rejected(Exception):
    """A request refused while being read, after its caller was authenticated."""

    def __init__(self, request: FhirRequest, error: ParcoursError) -> None:
        super().__init__(str(error))
        self.request = request
        self.error = error


class FhirApp:
    """An ASGI app serving the FHIR API for one platform."""

    def __init__(self, ctx: FhirContext, authenticator: Authenticator | None = None) -> None:
        self.ctx = ctx
        self.engine = FhirEngine(ctx)
        self.authenticator = authenticator or Authenticator(ctx.store, ctx.settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        try:
            fhir_request = await self._fhir_request(request)
        except _Rejected as rejected:
            # Authenticated, then refused before any interaction: still an audited access.
            await run_in_threadpool(self.engine.record_rejected, rejected.request, rejected.error)
            response = error_response(rejected.error)
            pretty = False
        except ParcoursError as error:
            response = error_response(error)
            pretty = False
        else:
            response = await run_in_threadpool(self.engine.handle, fhir_request)
            pretty = fhir_request.param("_pretty") == "true"
        await _http_response(response, request.method == "HEAD", pretty)(scope, receive, send)

    def base_url(self, request: Request) -> str:
        root = str(request.scope.get("root_path", ""))
        if self.ctx.settings.production:
            return self.ctx.settings.base_url.rstrip("/") + root
        # Not request.base_url: Starlette builds it from the *application* root, not the mount.
        url = request.url
        return f"{url.scheme}://{url.netloc}{root}".rstrip("/")

    async def _fhir_request(self, request: Request) -> FhirRequest:
        method = request.method
        path = tuple(s for s in _route_path(request.scope).split("/") if s)
        query = parse_qsl(request.scope.get("query_string", b"").decode("latin-1"), True)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.scope["headers"]}
        principal: Principal | None = None
        if not (method in ("GET", "HEAD") and path == ("metadata",)):
            principal = await run_in_threadpool(self.authenticator.authenticate, headers)
        client = request.client.host if request.client else None
        try:
            return await self._parse(request, method, path, query, headers, principal, client)
        except ParcoursError as error:
            if principal is None:
                raise
            verb = "GET" if method == "HEAD" else method
            bare = FhirRequest(verb, path, tuple(query), headers, None, "", principal, client)
            raise _Rejected(bare, error) from error

    async def _parse(
        self,
        request: Request,
        method: str,
        path: tuple[str, ...],
        query: list[tuple[str, str]],
        headers: dict[str, str],
        principal: Principal | None,
        client: str | None,
    ) -> FhirRequest:
        _negotiate(query, headers)
        body: Any = None
        if method in _WITH_BODY:
            raw = await _read_body(request)
            content_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if method == "POST" and path[-1:] == ("_search",):
                if content_type not in (_FORM, ""):
                    raise UnsupportedMediaType(f"POST _search takes {_FORM}, not {content_type}")
                query = [*query, *parse_qsl(raw.decode("utf-8", "replace"), True)]
            else:
                body = _parse_json(raw, content_type)
        if any("\x00" in k or "\x00" in v for k, v in query) or any("\x00" in s for s in path):
            raise InvalidInput("NUL characters are not allowed in the URL")
        return FhirRequest(
            "GET" if method == "HEAD" else method,
            path,
            tuple(query),
            headers,
            body,
            self.base_url(request),
            principal,
            client,
        )


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _negotiate(query: list[tuple[str, str]], headers: dict[str, str]) -> None:
    fmt = next((v for k, v in reversed(query) if k == "_format"), None)
    if fmt is not None:
        if fmt.split(";")[0].strip().lower() not in _FORMATS:
            raise NotAcceptable(f"_format={fmt[:40]!r}: this server speaks JSON only")
        return
    accept = headers.get("accept", "").lower()
    if accept and "xml" in accept and "json" not in accept and "*/*" not in accept:
        raise NotAcceptable("this server answers in application/fhir+json only")


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise PayloadTooLarge(f"the body is larger than {MAX_BODY // (1024 * 1024)} MiB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise PayloadTooLarge(f"the body is larger than {MAX_BODY // (1024 * 1024)} MiB")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_json(raw: bytes, content_type: str) -> Any:
    if content_type and content_type not in _JSON_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {content_type[:60]!r} is not supported: send application/fhir+json"
        )
    if not raw.strip():
        raise InvalidInput("the request body is empty; a FHIR JSON resource is expected")
    # PostgreSQL cannot store U+0000 in JSON text, and FHIR strings never need it.
    if b"\\u0000" in raw:
        raise InvalidInput("the body contains a NUL character (\\u0000), which FHIR forbids")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from None


def _http_response(response: FhirResponse, head: bool, pretty: bool) -> Response:
    content = b""
    if response.body is not None and not head:
        option = orjson.OPT_INDENT_2 if pretty else 0
        content = orjson.dumps(response.body, option=option)
    return Response(
        content,
        status_code=response.status,
        headers=response.headers,
        media_type=MEDIA_TYPE if response.body is not None else None,
    )


def create_fhir_app(platform: FhirContext, authenticator: Authenticator | None = None) -> FhirApp:
    """The FHIR API of a platform, as an ASGI app to mount under ``/fhir``."""
    return FhirApp(platform, authenticator)


def fhir_routes(app: FhirApp, prefix: str = "/fhir") -> list[BaseRoute]:
    """Starlette routes that serve ``app`` at ``prefix`` and everything below it."""

    return [Route(prefix, _AtPrefix(app, prefix)), Mount(prefix, app=app)]


class _AtPrefix:
    """Serves the bare prefix (``/fhir``, where Bundles are POSTed) as the app's root.

    A class, not a function: Starlette wraps plain functions as GET-only endpoints.
    """

    def __init__(self, app: FhirApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        root = str(scope.get("root_path", "")) + self.prefix
        await self.app({**scope, "root_path": root}, receive, send)
