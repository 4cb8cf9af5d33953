"""The INS matricule (NIR or NIA) and its assigning authority.

Rules (see docs/identity.md): 15 characters, digits except ``2A``/``2B`` at positions 6-7,
first digit 1 or 2, key = 97 - (first 13 mod 97) with Corsica 2A -> 19 and 2B -> 18.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from .errors import InvalidInsError
from .frcore import CS_V2_0203_FR

__all__ = [
    "InsIdentifier",
    "InsKind",
    "InsSlot",
    "extract_ins",
    "find_ins_slots",
    "has_invalid_key",
    "ins_key",
    "is_valid_matricule",
    "parse_ins",
    "validate_matricule",
]

_OID_PREFIX: Final = "urn:oid:"
_INS_AUTHORITY_ARC: Final = "1.2.250.1.213.1.4."
_SHAPE: Final = re.compile(r"[0-9]{5}(?:[0-9]{2}|2A|2B)[0-9]{8}")


class InsKind(Enum):
    """Assigning authority of an INS: value = (OID, FR Core identifier type code, use)."""

    NIR = ("1.2.250.1.213.1.4.8", "INS-NIR", "official")
    NIA = ("1.2.250.1.213.1.4.9", "INS-NIA", "temp")
    NIR_TEST = ("1.2.250.1.213.1.4.10", "INS-NIR-TEST", "official")
    NIR_DEMO = ("1.2.250.1.213.1.4.11", "INS-NIR-DEMO", "official")

    @property
    def oid(self) -> str:
        return self.value[0]

    @property
    def system(self) -> str:
        return _OID_PREFIX + self.value[0]

    @property
    def type_code(self) -> str:
        return self.value[1]

    @property
    def use(self) -> str:
        """The ``Identifier.use`` pattern of the FR Core slice (``old`` is also allowed)."""
        return self.value[2]

    @property
    def is_test(self) -> bool:
        return self in (InsKind.NIR_TEST, InsKind.NIR_DEMO)

    @classmethod
    def from_system(cls, system: str | None) -> InsKind | None:
        """Kind for an ``urn:oid:`` system or a bare OID (HL7 v2 CX-4); None if not an INS."""
        if not system:
            return None
        oid = system.removeprefix(_OID_PREFIX)
        return next((kind for kind in cls if kind.oid == oid), None)

    @classmethod
    def from_type_code(cls, code: str | None) -> InsKind | None:
        return next((kind for kind in cls if kind.type_code == code), None)


def ins_key(first13: str) -> str:
    """The 2-digit control key of the first 13 characters of a NIR/NIA."""
    digits = first13.upper()
    if len(digits) != 13:
        raise InvalidInsError(
            "the key is computed on exactly 13 characters; pass the matricule without its key"
        )
    # Corsica departments are alphanumeric; the key is defined on their historic numbers.
    if digits[5:7] == "2A":
        digits = digits[:5] + "19" + digits[7:]
    elif digits[5:7] == "2B":
        digits = digits[:5] + "18" + digits[7:]
    if not digits.isdigit():
        raise InvalidInsError("only digits (and 2A/2B at positions 6-7) can carry a key")
    return f"{97 - int(digits) % 97:02d}"


def validate_matricule(value: str, *, field: str = "matricule") -> str:
    """Return the matricule in canonical form (upper case) or raise :class:`InvalidInsError`."""
    matricule = value.strip().upper()
    if len(matricule) != 15:
        raise InvalidInsError(
            f"an INS matricule has exactly 15 characters (13 + a 2-digit key), "
            f"got {len(matricule)}; send the full NIR/NIA with its key",
            field=field,
        )
    if not _SHAPE.fullmatch(matricule):
        raise InvalidInsError(
            "an INS matricule holds digits only, except 2A or 2B (Corsica) at positions 6-7; "
            "remove spaces, letters and separators",
            field=field,
        )
    if matricule[0] not in "12":
        raise InvalidInsError(
            "an INS matricule starts with 1 or 2 (RNIV §4.1); other numbers are not a NIR or "
            "NIA and cannot be used as an INS",
            field=field,
        )
    if matricule[13:] != ins_key(matricule[:13]):
        raise InvalidInsError(
            "the control key does not match the first 13 characters; check the typing of "
            "the matricule against the carte Vitale or the INSi answer",
            field=field,
        )
    return matricule


def is_valid_matricule(value: str) -> bool:
    try:
        validate_matricule(value)
    except InvalidInsError:
        return False
    return True


def has_invalid_key(value: str) -> bool:
    """True for a well-formed matricule (15 characters, shape, first digit) whose control key
    does not match its first 13 characters: the typing error RNIV forbids to store as an INS.

    Any other fault (length, characters, first digit) is False here: it is not this case.
    """
    matricule = value.strip().upper()
    return (
        len(matricule) == 15
        and _SHAPE.fullmatch(matricule) is not None
        and matricule[0] in "12"
        and matricule[13:] != ins_key(matricule[:13])
    )


def _mask(matricule: str) -> str:
    # Logs and reprs must not carry a NIR; sex + key is enough to tell values apart in debugging.
    return matricule[:1] + "*" * 12 + matricule[13:]


@dataclass(frozen=True, slots=True)
class InsIdentifier:
    """A checked INS: matricule (15 characters with its key) and its assigning authority."""

    matricule: str
    kind: InsKind

    def __repr__(self) -> str:
        return f"InsIdentifier(kind={self.kind.name}, matricule={_mask(self.matricule)!r})"

    __str__ = __repr__

    @property
    def oid(self) -> str:
        return self.kind.oid

    @property
    def system(self) -> str:
        return self.kind.system

    @property
    def key(self) -> str:
        return self.matricule[13:]

    @property
    def is_test(self) -> bool:
        return self.kind.is_test

    def to_fhir(self) -> dict[str, Any]:
        """The FR Core ``Patient.identifier`` slice for this INS."""
        return {
            "use": self.kind.use,
            "type": {"coding": [{"system": CS_V2_0203_FR, "code": self.kind.type_code}]},
            "system": self.kind.system,
            "value": self.matricule,
        }


def parse_ins(
    value: str,
    system: str,
    *,
    allow_test_ins: bool = False,
    field: str = "identifier",
) -> InsIdentifier:
    """Check a matricule and its OID (``urn:oid:...`` or bare) and build an :class:`InsIdentifier`.

    ``allow_test_ins`` is the platform policy switch: production refuses the test (.10) and
    demonstration (.11) authorities, which FR Core accepts as slices for convenience only.
    """
    kind = InsKind.from_system(system)
    if kind is None:
        known = system.removeprefix(_OID_PREFIX).startswith(_INS_AUTHORITY_ARC)
        hint = (
            "this OID of the INS arc is not an INS authority (INS-C and unknown OIDs are refused)"
            if known
            else "not an INS assigning authority"
        )
        raise InvalidInsError(
            f"{hint}; use urn:oid:1.2.250.1.213.1.4.8 (NIR) or .9 (NIA)",
            field=f"{field}.system",
        )
    if kind.is_test and not allow_test_ins:
        raise InvalidInsError(
            "test and demonstration INS authorities (1.2.250.1.213.1.4.10 / .11) are refused "
            "in production; send a production INS or enable allow_test_ins on a test platform",
            field=f"{field}.system",
        )
    return InsIdentifier(validate_matricule(value, field=f"{field}.value"), kind)


@dataclass(frozen=True, slots=True)
class InsSlot:
    """An identifier of a Patient that claims to be an INS, located by its index."""

    index: int
    kind: InsKind
    value: str | None
    use: str | None
    type_kind: InsKind | None
    """Kind named by the FR Core ``type`` code (FR Core slices on ``type``), if any."""
    system_kind: InsKind | None
    """Kind named by ``system``, if it is an INS authority."""

    @property
    def typed(self) -> bool:
        return self.type_kind is not None

    @property
    def location(self) -> str:
        return f"Patient.identifier[{self.index}]"

    @property
    def active(self) -> bool:
        return self.use != "old"


def _type_codes(identifier: Mapping[str, Any]) -> Iterator[str]:
    type_ = identifier.get("type")
    if not isinstance(type_, Mapping):
        return
    for coding in type_.get("coding") or ():
        if isinstance(coding, Mapping) and coding.get("system") == CS_V2_0203_FR:
            code = coding.get("code")
            if isinstance(code, str):
                yield code


def find_ins_slots(
    patient: Mapping[str, Any], *, accept_untyped_nir: bool = False
) -> list[InsSlot]:
    """Identifiers that are INS by their FR Core type code or, failing a type, by their OID.

    An untyped identifier with the NIR OID is ambiguous (the billing NSS uses the same OID
    with type ``NH``), so it counts only when ``accept_untyped_nir`` is set.
    """
    identifiers = patient.get("identifier") or []
    slots: list[InsSlot] = []
    if not isinstance(identifiers, Sequence):
        return slots
    for index, identifier in enumerate(identifiers):
        if not isinstance(identifier, Mapping):
            continue
        type_kind = next(
            (k for k in map(InsKind.from_type_code, _type_codes(identifier)) if k), None
        )
        system = identifier.get("system")
        system_kind = InsKind.from_system(system if isinstance(system, str) else None)
        has_other_type = bool(identifier.get("type")) and type_kind is None
        if type_kind is None and (system_kind is None or has_other_type):
            continue
        if type_kind is None and system_kind is InsKind.NIR and not accept_untyped_nir:
            continue
        kind = type_kind or system_kind
        assert kind is not None
        value = identifier.get("value")
        use = identifier.get("use")
        slots.append(
            InsSlot(
                index=index,
                kind=kind,
                value=value if isinstance(value, str) else None,
                use=use if isinstance(use, str) else None,
                type_kind=type_kind,
                system_kind=system_kind,
            )
        )
    return slots


def extract_ins(
    patient: Mapping[str, Any],
    *,
    allow_test_ins: bool = False,
    accept_untyped_nir: bool = False,
) -> InsIdentifier | None:
    """The active INS of a FHIR Patient dict, checked; None when it carries none.

    A deactivated INS (``use = old``) is ignored. When both a NIR and a NIA are present
    (NIA -> NIR transition), the NIR wins, as PAM FR asks of receivers.
    Raises :class:`InvalidInsError` naming ``Patient.identifier[i]`` when an INS is invalid
    or when two different active INS of the same kind are present.
    """
    found: list[InsIdentifier] = []
    for slot in find_ins_slots(patient, accept_untyped_nir=accept_untyped_nir):
        if not slot.active:
            continue
        if slot.type_kind is not None and slot.type_kind is not slot.system_kind:
            raise InvalidInsError(
                f"identifier type {slot.type_kind.type_code} requires system "
                f"{slot.type_kind.system}; fix the system or the type code",
                field=f"{slot.location}.system",
            )
        if slot.value is None:
            raise InvalidInsError(
                "an INS identifier needs a value (FR Core: value 1..1)",
                field=f"{slot.location}.value",
            )
        found.append(
            parse_ins(
                slot.value,
                slot.kind.system,
                allow_test_ins=allow_test_ins,
                field=slot.location,
            )
        )
    if not found:
        return None
    for kind in (InsKind.NIR, InsKind.NIR_TEST, InsKind.NIR_DEMO, InsKind.NIA):
        of_kind = {ins.matricule for ins in found if ins.kind is kind}
        if len(of_kind) > 1:
            raise InvalidInsError(
                f"several different active {kind.type_code} identifiers; keep the latest "
                "and mark the others use = old",
                field="Patient.identifier",
            )
        if of_kind:
            return next(ins for ins in found if ins.kind is kind)
    return None  # pragma: no cover - every kind is listed above
