"""The application: the FHIR API, the operations endpoints and the web front, in one ASGI app.

Each part is its own ASGI app mounted here (Starlette's composition by wrapping), so a test can
mount only the part it exercises.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from starlette.applications import Starlette

from parcours.auth import auth_routes
from parcours.fhir import create_fhir_app, fhir_routes
from parcours.notify.delivery import DeliveryHandler
from parcours.notify.delivery.routes import inbox_routes
from parcours.ops import Metrics, ops_middleware, ops_routes
from parcours.platform import Platform
from parcours.store.outbox import Dispatcher, dispatching
from parcours.web import web_routes

__all__ = ["create_app"]


def create_app(platform: Platform, *, dispatch: bool | None = None) -> Starlette:
    """The whole application. ``dispatch`` runs the outbox in this process (default: when
    ``PARCOURS_OUTBOX_WORKERS`` ≥ 1, the embedded SQLite set-up)."""
    settings = platform.settings
    metrics = Metrics(platform.store)
    run_dispatcher = settings.outbox_workers >= 1 if dispatch is None else dispatch

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if run_dispatcher:
                dispatcher = Dispatcher(platform.store, platform.handlers, observers=[metrics])
                await stack.enter_async_context(
                    dispatching(dispatcher, settings.outbox_poll_seconds)
                )
            yield

    fhir_app = create_fhir_app(platform, platform.authenticator)
    delivery = next((h for h in platform.handlers if isinstance(h, DeliveryHandler)), None)
    return Starlette(
        routes=[
            *ops_routes(platform, metrics),
            *auth_routes(platform.authenticator),
            *inbox_routes(platform),
            *fhir_routes(fhir_app),
            # The coordinator's workspace (/, /patients, ...): the same engine as /fhir.
            *web_routes(
                fhir_app.engine,
                platform.authenticator,
                delivery.signal if delivery is not None else None,
            ),
        ],
        middleware=ops_middleware(metrics),
        lifespan=lifespan,
    )
