"""Wiring: one place that builds the store with its plug-ins from the settings.

Every entry point (``parcours serve``, the outbox worker, the CLI, tests) builds its
``Platform`` here, so the API, the HL7 listener and the workers share the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from parcours import pathways
from parcours.audit import AuditTrail
from parcours.audit.writes import login_entry, platform_writes
from parcours.auth import Authenticator
from parcours.config import Settings
from parcours.coordination.rules import CoordinationRules
from parcours.fhir.validation import make_validator
from parcours.identity import IdentityService, identity_service
from parcours.notify import order as notify_order
from parcours.notify import subscriptions as notify_subscriptions
from parcours.notify.delivery import DeliveryHandler
from parcours.notify.emitter import EventEmitter
from parcours.notify.manager import NotificationManager
from parcours.ppcs import rules as ppcs_rules
from parcours.security import circle
from parcours.store import Store, make_engine
from parcours.store.outbox import Handler
from parcours.store.search import SearchParameterRegistry

__all__ = ["Platform", "build_platform"]


@dataclass
class Platform:
    settings: Settings
    store: Store
    registry: SearchParameterRegistry
    # FR Core checks, online matching (a store write hook) and $match; one per process.
    identity: IdentityService
    audit: AuditTrail
    # Who is calling: one per process, shared by the FHIR API, the login routes and the UI.
    authenticator: Authenticator
    # Outbox reactors (notifications, pathway rules…) register here; one dispatcher runs them.
    handlers: list[Handler] = field(default_factory=list)

    def load_custom_search_parameters(self) -> int:
        """Make the SearchParameter resources stored in the database searchable."""
        with self.store.begin(readonly=True) as tx:
            return self.registry.load_custom(tx)

    def close(self) -> None:
        self.store.engine.dispose()


def build_platform(settings: Settings) -> Platform:
    engine = make_engine(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    # Absolute references to our own FHIR base are indexed as local Type/id references.
    registry = SearchParameterRegistry.load_default(base_urls=(f"{settings.base_url}/fhir",))
    identity = identity_service(settings.production)
    validator = make_validator(settings, profile_checks=[identity.profile_check])
    store = Store(engine, validator=validator, registry=registry)
    # Every Patient write, whatever its entry point (REST, HL7, UI), is matched in its own
    # transaction: see parcours.identity.service.
    store.write_hooks.append(identity.on_write)
    # Care-circle memberships and oppositions, as rows the access policy's SQL reads.
    store.derived_hooks.append(circle.on_write)
    # Every interaction and every write leaves its AuditEvent in the hash-chained trail.
    audit = AuditTrail(store)
    store.audit = audit
    store.audit_writes = platform_writes
    # Subscription owners are known only in the request's transaction (issue 6).
    store.write_hooks.append(notify_subscriptions.on_write)
    # Delivery order keys of notification requests, for delivery's order probe (issue 6).
    store.derived_hooks.append(notify_order.on_write)
    # A signed PPCS version is read-only; sign-off goes through $ppcs-sign (docs/ppcs.md).
    store.write_hooks.append(ppcs_rules.on_write)
    # Coordination requests obey their state machine on every Task write (docs/coordination.md).
    store.write_hooks.append(CoordinationRules().on_write)
    # A pathway PlanDefinition (PUT, Bundle, CLI) must compile; pathway Tasks are indexed for
    # the overdue sweep (docs/pathways.md).
    store.write_hooks.append(pathways.check_plan)
    store.derived_hooks.append(pathways.index_tasks)
    authenticator = Authenticator(store, settings)
    # A login the trail cannot record fails (the authenticator lets listener errors through).
    authenticator.login_listeners.append(lambda event: audit.record([login_entry(event)]))
    return Platform(
        settings=settings,
        store=store,
        registry=registry,
        identity=identity,
        audit=audit,
        authenticator=authenticator,
        # NdE: declare events, activate Subscriptions, then decide who is notified.
        handlers=[
            EventEmitter(),
            notify_subscriptions.SubscriptionActivator(),
            NotificationManager(),
            # Then deliver the notification requests (rest-hook, e-mail, in-app inbox).
            DeliveryHandler(settings),
            # Pathway progress when a client completes a Task or answers a form over REST.
            pathways.PathwayReactor(),
        ],
    )
