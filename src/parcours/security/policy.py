"""The access policy: who may see and write which resources, in one place.

Every entry point (FHIR API, web workspace, exports) asks ``access_for`` for the caller's
``Access`` once per transaction, then:

- ``require(type, write)`` before touching a type at all (403 when the role never may);
- ``condition(alias, type)`` adds the row filter to a search, an include, a chain, a ``_has``
  or a history query, so a result, a count or an included resource the caller may not see is
  never produced (the filter is SQL, not a post-filter of a page);
- ``check(tx, type, patient_id, write)`` before returning or writing one resource.

The rules (decision D16 in docs/decisions.md):

- ``admin``: everything. ``system`` clients: the types their SMART scopes name, every row.
- ``professional``: the patient data of the patients whose care circle they actively belong to
  — as themselves, through one of their PractitionerRoles, or through an Organization they
  work for that is itself a participant; ``coordinator``: also every patient whose circle is
  managed by, or includes a role of, their organisations. Both may create Patients.
- ``identity-referent``: every Patient (read, write, merge), no clinical data.
- ``analyst``: reads patient data of everyone, pseudonymised (``pseudonymise``), never a
  RelatedPerson, never an identifying search.
- Directory and conformance resources are readable by every authenticated caller.
- An opposition (Consent deny) removes the patient from its actors' (or everyone's) view, and
  wins over break-the-glass; an ended participation ends access the next millisecond; a
  break-the-glass grant opens one patient to one professional for a limited time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    FromClause,
    Select,
    and_,
    exists,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.exc import IntegrityError

from parcours.errors import Forbidden, InvalidInput, NotFound
from parcours.security.circle import reference_key
from parcours.security.principal import Principal
from parcours.security.tables import (
    access_grant,
    care_member,
    care_opposition,
    platform_secret,
)
from parcours.security.visibility import (
    Caller,
    Visible,
    active,
    changed,
    memberships,
    opposing,
    visible_patients,
)
from parcours.store.clock import now_ms
from parcours.store.schema import idx_reference, resource

if TYPE_CHECKING:
    from parcours.store import Store, Transaction

__all__ = [
    "PATIENT_TYPES",
    "SHARED_TYPES",
    "Access",
    "access_for",
    "break_glass",
    "pseudonymise",
    "sees_pseudonyms",
]

Rule = Literal["all", "own", "circle", "none"]

# R4's Patient CompartmentDefinition, plus Task (Task.for): the patient data.
PATIENT_TYPES = frozenset(
    [
        "Account",
        "AdverseEvent",
        "AllergyIntolerance",
        "Appointment",
        "AppointmentResponse",
        "Basic",
        "BodyStructure",
        "CarePlan",
        "CareTeam",
        "ChargeItem",
        "Claim",
        "ClaimResponse",
        "ClinicalImpression",
        "Communication",
        "CommunicationRequest",
        "Composition",
        "Condition",
        "Consent",
        "Coverage",
        "CoverageEligibilityRequest",
        "CoverageEligibilityResponse",
        "DetectedIssue",
        "DeviceRequest",
        "DeviceUseStatement",
        "DiagnosticReport",
        "DocumentManifest",
        "DocumentReference",
        "Encounter",
        "EnrollmentRequest",
        "EpisodeOfCare",
        "ExplanationOfBenefit",
        "FamilyMemberHistory",
        "Flag",
        "Goal",
        "ImagingStudy",
        "Immunization",
        "ImmunizationEvaluation",
        "ImmunizationRecommendation",
        "Invoice",
        "List",
        "MeasureReport",
        "Media",
        "MedicationAdministration",
        "MedicationDispense",
        "MedicationRequest",
        "MedicationStatement",
        "MolecularSequence",
        "NutritionOrder",
        "Observation",
        "Patient",
        "Procedure",
        "Provenance",
        "QuestionnaireResponse",
        "RelatedPerson",
        "RequestGroup",
        "ResearchSubject",
        "RiskAssessment",
        "ServiceRequest",
        "Specimen",
        "SupplyDelivery",
        "SupplyRequest",
        "Task",
        "VisionPrescription",
    ]
)
# Directory and conformance resources: readable by everyone logged in, written by operations.
SHARED_TYPES = frozenset(
    [
        "Practitioner",
        "PractitionerRole",
        "Organization",
        "Location",
        "HealthcareService",
        "Endpoint",
        "Device",
        "Person",
        "Medication",
        "Substance",
        "ValueSet",
        "CodeSystem",
        "ConceptMap",
        "NamingSystem",
        "StructureDefinition",
        "SearchParameter",
        "CapabilityStatement",
        "OperationDefinition",
        "CompartmentDefinition",
        "ImplementationGuide",
        "Questionnaire",
        "PlanDefinition",
        "ActivityDefinition",
        "Library",
        "Measure",
    ]
)
# What an analyst never sees, even pseudonymised: it names people.
_ANALYST_HIDDEN = frozenset({"RelatedPerson", "Person"})
# Patient search parameters an analyst may use: none of them singles a person out.
_ANALYST_PATIENT_PARAMS = frozenset(
    {"gender", "_lastUpdated", "_count", "_total", "_summary", "_elements", "_sort", "_cursor"}
)
_CLINICAL_ROLES = frozenset({"professional", "coordinator"})
_RANK: dict[Rule, int] = {"none": 0, "own": 1, "circle": 1, "all": 2}


def _scope_allows(scopes: Iterable[str], res_type: str, write: bool) -> bool:
    """SMART v1 (``system/Type.read|write|*``) and v2 (``system/Type.cruds``) scopes."""
    for scope in scopes:
        context, _, rest = scope.partition("/")
        if context not in ("system", "user") or "." not in rest:
            continue
        target, _, what = rest.partition(".")
        if target not in ("*", res_type):
            continue
        if what == "*" or what == ("write" if write else "read"):
            return True
        if what and set(what) <= set("cruds"):
            if write and set(what) & set("cud"):
                return True
            if not write and set(what) & set("rs"):
                return True
    return False


@dataclass(frozen=True, slots=True)
class Access:
    """One caller's rights, bound to an instant; cheap to build, built once per transaction."""

    principal: Principal
    now_ms: int
    # "Practitioner/1" and the caller's active "PractitionerRole/…".
    member_keys: tuple[str, ...] = ()
    # "Organization/…" the caller works for (through their roles).
    org_keys: tuple[str, ...] = ()
    # Patients open to the caller by a current break-the-glass grant.
    glass: frozenset[str] = frozenset()
    # The transaction's store and connection, to list the visible patients (``visible``).
    conn: Connection | None = field(default=None, compare=False)
    store: Store | None = field(default=None, compare=False)
    _cache: dict[tuple[str, bool], Rule] = field(default_factory=dict, compare=False)
    _visible: list[Visible | None] = field(default_factory=list, compare=False)

    @property
    def unrestricted(self) -> bool:
        return self.principal.is_admin

    @property
    def pseudonymised(self) -> bool:
        return sees_pseudonyms(self.principal)

    # ---- rules per type --------------------------------------------------------------------

    def rule(self, res_type: str, write: bool = False) -> Rule:
        key = (res_type, write)
        cached = self._cache.get(key)
        if cached is None:
            cached = "none"
            for role in self.principal.roles:
                candidate = self._role_rule(role, res_type, write)
                if _RANK[candidate] > _RANK[cached]:
                    cached = candidate
            self._cache[key] = cached
        return cached

    def _role_rule(self, role: str, res_type: str, write: bool) -> Rule:
        if role == "admin":
            return "all"
        if role == "system":
            return "all" if _scope_allows(self.principal.scopes, res_type, write) else "none"
        if res_type in SHARED_TYPES:
            return "none" if write else "all"
        if res_type == "Subscription" and role in _CLINICAL_ROLES:
            # Their own NdE subscriptions only (an NdE Subscription may contain a Patient):
            # parcours.notify records each Subscription's owner when it is created.
            return "own"
        if role in _CLINICAL_ROLES:
            return "circle" if res_type in PATIENT_TYPES else "none"
        if role == "identity-referent":
            # Identities, and the trail of who accessed them ("who accessed my record").
            return (
                "all"
                if res_type in ("Patient", "AuditEvent")
                and not (write and res_type == "AuditEvent")
                else "none"
            )
        if role == "analyst" and not write:
            return "all" if res_type in PATIENT_TYPES - _ANALYST_HIDDEN else "none"
        return "none"

    def require(self, res_type: str, write: bool = False) -> Rule:
        rule = self.rule(res_type, write)
        if rule == "none":
            verb = "write" if write else "read"
            raise Forbidden(f"your role does not allow you to {verb} {res_type} resources")
        return rule

    def may_create_patient(self) -> bool:
        roles = self.principal.roles
        return self.rule("Patient", True) == "all" or bool(roles & _CLINICAL_ROLES)

    # ---- rows -------------------------------------------------------------------------------

    def _active(self, table: Any) -> ColumnElement[bool]:
        return active(table, self.now_ms)

    @property
    def caller(self) -> Caller:
        return Caller(
            self.principal.subject,
            self.member_keys,
            self.org_keys,
            "coordinator" in self.principal.roles,
        )

    def _opposed(self) -> Select[Any]:
        return select(care_opposition.c.patient_id).where(
            opposing(self.caller.actors), self._active(care_opposition)
        )

    def visible(self) -> frozenset[str] | None:
        """The patients the caller may see now, or None: more than ``VISIBLE_LIST_MAX``, or in
        a transaction that writes (its own writes may change the circles); the SQL filter then
        tests each row's patient (``_in_circle``). Read once per transaction, from the
        process's cache when nothing can have changed it (``parcours.security.visibility``)."""
        listed = self._listed()
        return listed.ids if listed is not None else None

    def _listed(self) -> Visible | None:
        if not self._visible:
            self._visible.append(self._read_visible())
        return self._visible[0]

    def _read_visible(self) -> Visible | None:
        if self.conn is None or self.store is None or not self.conn.info.get("readonly"):
            return None
        listed = visible_patients(self.store, self.conn, self.caller, self.now_ms, VISIBLE_LIST_MAX)
        return listed if listed.ids is not None else None

    def _in_circle(self, column: Any) -> ColumnElement[bool]:
        """The patient of ``column`` is reachable through the caller's circles or break-the-glass
        grants, and has not opposed them.

        Correlated EXISTS tests: each candidate row looks up its own patient's few memberships
        (indexed by patient), where ``IN (subquery)`` would list every patient of a structure
        for each statement (SQLite: 60 ms against 2 ms for a coordinator of 7,000 patients).
        Grants are read only when the caller holds one (``glass``, cached a couple of seconds,
        dropped at once in this process when a grant is made).
        """
        caller = self.caller
        members = memberships(caller.keys or None, caller.org_keys if caller.coordinates else None)
        ways: list[ColumnElement[bool]] = []
        if members is not None:
            ways.append(
                exists().where(
                    care_member.c.patient_id == column, members, self._active(care_member)
                )
            )
        if self.glass or members is None:
            ways.append(
                exists().where(
                    access_grant.c.subject == self.principal.subject,
                    access_grant.c.patient_id == column,
                    access_grant.c.expires_ms > self.now_ms,
                )
            )
        opposed = self._opposed().where(care_opposition.c.patient_id == column).exists()
        return and_(or_(*ways), ~opposed)

    def listed(self, res_type: str) -> Visible | None:
        """The caller's visible patients when they decide which rows of ``res_type`` the
        caller sees and are listed (``condition`` is then "the row's patient is one of
        these"); None otherwise."""
        if self.unrestricted or self.rule(res_type) != "circle":
            return None
        return self._listed()

    def patient_condition(self, column: Any) -> ColumnElement[bool]:
        listed = self._listed()
        if listed is not None:
            return listed.test(column)
        return self._in_circle(column)

    def condition(self, alias: FromClause, res_type: str | None) -> ColumnElement[bool] | None:
        """The row filter for ``alias`` (a ``resource`` alias); None when every row is visible.

        With ``res_type`` None the filter also tests the row's type (includes, history).
        """
        if self.unrestricted:
            return None
        if res_type is not None:
            rule = self.rule(res_type)
            if rule == "all":
                return None
            if rule == "none":
                return literal(False)
            if rule == "own":
                return alias.c.id.in_(self._owned(res_type))
            return self.patient_condition(alias.c.patient_id)
        every, circle = self._types_by_rule()
        tests: list[ColumnElement[bool]] = []
        if every:
            tests.append(alias.c.type.in_(sorted(every)))
        if circle:
            tests.append(
                and_(alias.c.type.in_(sorted(circle)), self.patient_condition(alias.c.patient_id))
            )
        return or_(*tests) if tests else literal(False)

    def _types_by_rule(self) -> tuple[frozenset[str], frozenset[str]]:
        known = PATIENT_TYPES | SHARED_TYPES | {"Subscription", "AuditEvent", "Bundle"}
        every = frozenset(t for t in known if self.rule(t) == "all")
        circle = frozenset(t for t in known if self.rule(t) == "circle")
        return every, circle

    def _owned(self, res_type: str) -> Select[Any]:
        """Ids of the resources of ``res_type`` the caller owns (Subscriptions)."""
        from parcours.notify.tables import notify_subscription

        return select(notify_subscription.c.subscription_id).where(
            notify_subscription.c.owner_subject == self.principal.subject
        )

    def _owns(self, tx: Transaction, res_type: str, res_id: str) -> bool:
        from parcours.notify.tables import notify_subscription

        query = self._owned(res_type).where(notify_subscription.c.subscription_id == res_id)
        return tx.conn.execute(query).first() is not None

    def sees_patient(self, tx: Transaction, patient_id: str) -> bool:
        if self.rule("Patient") == "all" or self.unrestricted:
            return True
        visible = self.visible() if self.conn is tx.conn else None
        if visible is not None:
            return patient_id in visible
        row = tx.conn.execute(
            select(literal(1)).where(self.patient_condition(literal(patient_id)))
        ).first()
        return row is not None

    def check(
        self,
        tx: Transaction,
        res_type: str,
        patient_id: str | None,
        write: bool = False,
        res_id: str | None = None,
    ) -> None:
        """Refuse (403) one resource of ``res_type`` (``res_id``) belonging to ``patient_id``."""
        rule = self.require(res_type, write)
        if rule == "all":
            return
        if rule == "own":
            if res_id is None or not self._owns(tx, res_type, res_id):
                raise Forbidden(f"this {res_type} is someone else's")
            return
        if patient_id is None:
            raise Forbidden(
                f"this {res_type} belongs to no patient: only operations staff may "
                f"{'write' if write else 'read'} it"
            )
        if not self.sees_patient(tx, patient_id):
            raise Forbidden(
                f"Patient/{patient_id} is not in one of your care circles (or the patient "
                "opposed your access): use break-the-glass if this is an emergency"
            )

    # ---- searches ----------------------------------------------------------------------------

    def check_search(self, res_type: str, params: Iterable[tuple[str, str]]) -> None:
        """Refuse searches that would single a person out for a pseudonymised caller."""
        if not self.pseudonymised:
            return
        for key, _value in params:
            code = key.split(":", 1)[0]
            chained_to_patient = "." in key or code == "_has"
            if res_type == "Patient" and code not in _ANALYST_PATIENT_PARAMS:
                raise Forbidden(f"analysts may not search Patients by {key!r}")
            if chained_to_patient:
                raise Forbidden(f"analysts may not use chained or _has parameters ({key!r})")
            if code in ("patient", "subject", "_id"):
                raise Forbidden(f"analysts may not search by {key!r}")

    def purpose(self, patient_ids: Iterable[str]) -> str | None:
        """ "BTG" when one of the patients is reached through break-the-glass."""
        return "BTG" if self.glass and not self.glass.isdisjoint(patient_ids) else None


# Above this many visible patients the row filter tests memberships row by row (``visible``).
VISIBLE_LIST_MAX = 1000


def sees_pseudonyms(principal: Principal) -> bool:
    """An analyst without another role reads pseudonymised data only."""
    roles = principal.roles
    return "analyst" in roles and not roles & (_CLINICAL_ROLES | {"admin", "system"})


# The caller's roles and break-the-glass grants are read on every request and change rarely:
# kept per store for CACHE_SECONDS, and dropped at once in this process when a PractitionerRole
# or a grant is written (other processes see the change within CACHE_SECONDS). The patients
# those keys open are kept by ``parcours.security.visibility``, which every process invalidates.
CACHE_SECONDS = 2.0
_CACHE = "security.policy"


def _cache(
    tx: Transaction,
) -> dict[str, tuple[float, tuple[str, ...], tuple[str, ...], frozenset[str]]]:
    cache: dict[str, tuple[float, tuple[str, ...], tuple[str, ...], frozenset[str]]]
    cache = tx.store.caches.setdefault(_CACHE, {})
    return cache


def forget_keys(tx: Transaction) -> None:
    """After this transaction commits, drop the cached keys (a role or a grant changed); other
    processes see the change within CACHE_SECONDS, and every process's visible lists at once."""
    store = tx.store
    tx.after_commit.append(lambda: store.caches.pop(_CACHE, None))
    changed(tx)


def access_for(tx: Transaction, principal: Principal, at_ms: int | None = None) -> Access:
    """The caller's ``Access``: their roles, their PractitionerRoles and organisations."""
    now = now_ms() if at_ms is None else at_ms
    if principal.is_admin:
        return Access(principal, now)
    cache = _cache(tx)
    key = f"{principal.subject}|{principal.practitioner}"
    cached = cache.get(key)
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        _at, members, orgs, glass = cached
        return Access(principal, now, members, orgs, glass, tx.conn, tx.store)
    members, orgs = _keys(tx, principal.practitioner)
    rows = tx.conn.execute(
        select(access_grant.c.patient_id).where(
            access_grant.c.subject == principal.subject, access_grant.c.expires_ms > now
        )
    )
    glass = frozenset(r.patient_id for r in rows)
    cache[key] = (time.monotonic(), members, orgs, glass)
    return Access(principal, now, members, orgs, glass, tx.conn, tx.store)


def _keys(tx: Transaction, practitioner: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The practitioner and their active roles, and the organisations of those roles."""
    members: list[str] = []
    orgs: list[str] = []
    if not practitioner or not practitioner.startswith("Practitioner/"):
        return (), ()
    members.append(practitioner)
    role = resource.alias()
    ref = idx_reference
    rows = tx.conn.execute(
        select(role.c.id, role.c.content)
        .join(ref, ref.c.resource_pk == role.c.pk)
        .where(
            ref.c.res_type == "PractitionerRole",
            ref.c.param == "practitioner",
            ref.c.target_type == "Practitioner",
            ref.c.target_id == practitioner.split("/", 1)[1],
            ref.c.target_url.is_(None),
            role.c.deleted.is_(False),
        )
    )
    for row in rows:
        if row.content.get("active") is False:
            continue
        members.append(f"PractitionerRole/{row.id}")
        org = reference_key(tx, row.content.get("organization"))
        if org is not None and org not in orgs:
            orgs.append(org)
    return tuple(members), tuple(orgs)


def break_glass(tx: Transaction, access: Access, patient_id: str, reason: str, seconds: int) -> int:
    """Open ``patient_id`` to the caller for ``seconds``; returns the expiry (ms)."""
    roles = access.principal.roles
    if not roles & _CLINICAL_ROLES:
        raise Forbidden("only a health or social professional may break the glass")
    if len(reason.strip()) < 10:
        raise InvalidInput("break-the-glass needs a reason of at least 10 characters")
    if not tx.exists("Patient", patient_id):
        raise NotFound(f"Patient/{patient_id[:64]} is not known")
    opposed = tx.conn.execute(
        access._opposed().where(care_opposition.c.patient_id == patient_id)
    ).first()
    if opposed is not None:
        raise Forbidden(
            f"Patient/{patient_id} opposed access by you: break-the-glass cannot override it"
        )
    expires = access.now_ms + seconds * 1000
    tx.conn.execute(
        insert(access_grant).values(
            subject=access.principal.subject,
            patient_id=patient_id,
            reason=reason.strip()[:2000],
            granted_ms=access.now_ms,
            expires_ms=expires,
        )
    )
    forget_keys(tx)
    return expires


# ---- pseudonymisation --------------------------------------------------------------------


def pseudonym_key(tx: Transaction) -> bytes:
    """The platform's secret for pseudonyms, created by the first process that needs it."""
    row = tx.conn.execute(
        select(platform_secret.c.value).where(platform_secret.c.name == "pseudonym-key")
    ).first()
    if row is not None:
        return bytes.fromhex(row.value)
    value = secrets.token_hex(32)
    try:
        with tx.savepoint():
            tx.conn.execute(insert(platform_secret).values(name="pseudonym-key", value=value))
    except IntegrityError:
        return pseudonym_key(tx)
    return bytes.fromhex(value)


def pseudonym(key: bytes, patient_id: str) -> str:
    return "p" + hmac.new(key, patient_id.encode(), hashlib.sha256).hexdigest()[:24]


_PATIENT_KEEP = ("resourceType", "id", "meta", "gender", "deceasedBoolean")


def pseudonymise(body: Any, key: bytes) -> Any:
    """``body`` with every Patient reduced to gender, birth year and département, every
    Patient reference replaced by a keyed pseudonym, and narratives removed."""
    if isinstance(body, dict):
        if body.get("resourceType") == "Patient":
            return _pseudonymous_patient(body, key)
        out: dict[str, Any] = {}
        for name, value in body.items():
            if name == "text" and isinstance(value, dict) and "div" in value:
                continue
            if (name == "reference" and isinstance(value, str)) or (
                name == "fullUrl" and isinstance(value, str) and "/Patient/" in value
            ):
                out[name] = _pseudonymous_reference(value, key)
            elif name == "display" and "reference" in body:
                continue
            else:
                out[name] = pseudonymise(value, key)
        return out
    if isinstance(body, list):
        return [pseudonymise(v, key) for v in body]
    return body


def _pseudonymous_reference(ref: str, key: bytes) -> str:
    head, sep, tail = ref.rpartition("Patient/")
    if not sep or (head and not head.endswith("/")):
        return ref
    patient_id = tail.split("/", 1)[0]
    return f"{head}Patient/{pseudonym(key, patient_id)}"


def _pseudonymous_patient(patient: dict[str, Any], key: bytes) -> dict[str, Any]:
    out = {k: patient[k] for k in _PATIENT_KEEP if k in patient}
    out["id"] = pseudonym(key, str(patient.get("id", "")))
    birth = patient.get("birthDate")
    if isinstance(birth, str) and len(birth) >= 4:
        out["birthDate"] = birth[:4]
    departements = [
        a["postalCode"][:2]
        for a in patient.get("address") or []
        if isinstance(a, dict) and isinstance(a.get("postalCode"), str)
    ]
    if departements:
        out["address"] = [{"district": departements[0]}]
    meta = dict(out.get("meta") or {})
    meta["security"] = [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
            "code": "PSEUDED",
            "display": "pseudonymized",
        }
    ]
    out["meta"] = meta
    return out
