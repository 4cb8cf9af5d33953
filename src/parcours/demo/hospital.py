"""A demo hospital: sends an admission, an ER arrival or a discharge for a demo patient over MLLP.

``parcours demo-admission`` plays, against a running ``parcours serve --mllp-port``, what a
hospital's patient-administration system does (HL7 v2.5 PAM FR ADT^A01 / A04 / A03 with the
patient's test INS), so the whole path — identity matching, the encounter, the care circle's
notifications — can be watched live in the demo region. By default the patient is one whose
care circle includes the demo GP (``DEMO_USERS``), so the demo accounts receive it.
"""

from __future__ import annotations

import argparse
import socket
import time
from typing import Any

from parcours.demo.circles import DEMO_USERS

__all__ = ["admission_message", "register", "send_mllp"]

VT, FS, CR = b"\x0b", b"\x1c", b"\r"
_FACILITY = "CHU-DIJON&210780581&M"
# (message type, PV1-2 patient class, unit): what each kind of movement looks like.
_KINDS = {
    "admission": ("ADT^A01^ADT_A01", "I", "MEDECINE"),
    "er": ("ADT^A04^ADT_A01", "E", "URGENCES"),
    "discharge": ("ADT^A03^ADT_A03", "I", "MEDECINE"),
}


def _ins(patient: dict[str, Any]) -> str | None:
    for identifier in patient.get("identifier") or []:
        if str(identifier.get("system", "")).startswith("urn:oid:1.2.250.1.213.1.4."):
            return str(identifier.get("value"))
    return None


def admission_message(patient: dict[str, Any], kind: str, stay: str, at: str) -> str:
    """The ER7 text of one movement of ``patient`` (a FHIR Patient of the demo region)."""
    message_type, patient_class, unit = _KINDS[kind]
    name = patient["name"][0]
    family = name.get("family", "")
    given = (name.get("given") or [""])[0]
    birth = str(patient.get("birthDate", "")).replace("-", "")
    sex = {"female": "F", "male": "M"}.get(str(patient.get("gender")), "U")
    identifiers = [f"{patient['id'][:20]}^^^{_FACILITY}^PI"]
    ins = _ins(patient)
    if ins:
        identifiers.append(f"{ins}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS")
    trigger = message_type.split("^")[1]
    event = "INSERT"
    segments = [
        f"MSH|^~\\&|GAM|CHU-DIJON|PARCOURS|REGION|{at}||{message_type}|{stay}-{trigger}|P|"
        "2.5^FRA^2.11|||||FRA|UNICODE UTF-8",
        f"EVN||{at}",
        f"PID|1||{'~'.join(identifiers)}||{family}^{given}^^^^^L||{birth}|{sex}"
        + "|" * 24
        + "VALI",
        f"PV1|1|{patient_class}|{unit}^^^{_FACILITY}||||||||||||||||{stay}^^^{_FACILITY}^VN"
        + (f"|||||||||||||||||||{at}" if kind == "discharge" else ""),
        f"ZBE|{stay}-{trigger}^CHU-DIJON^210780581^M|{at}||{event}|N||"
        f"{unit}^^^^^{_FACILITY}^UF^^^4001|{unit}^^^^^{_FACILITY}^UF^^^4001|HMS",
    ]
    return "\r".join(segments) + "\r"


def send_mllp(host: str, port: int, message: str, timeout: float = 30) -> str:
    """Send one framed message; return the ACK's text."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(VT + message.encode("utf-8") + FS + CR)
        data = b""
        while not data.endswith(FS + CR):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the listener closed the connection without an ACK")
            data += chunk
    return data.strip(VT + FS + CR).decode("utf-8")


def _demo_patient(requested: str | None) -> dict[str, Any]:
    from parcours.config import load_settings
    from parcours.platform import build_platform
    from parcours.store.search import parse_search

    platform = build_platform(load_settings())
    try:
        with platform.store.begin(readonly=True) as tx:
            if requested:
                return tx.read("Patient", requested.removeprefix("Patient/"))
            gp = next(u for u in DEMO_USERS if u.username == "medecin")
            query = parse_search(
                "CareTeam",
                [
                    ("participant", f"PractitionerRole/{gp.practitioner_role_id}"),
                    ("status", "active"),
                    ("_count", "1"),
                ],
                platform.registry,
            )
            teams = tx.search(query).matches
            if not teams:
                raise SystemExit("no care circle of the demo GP: load the demo first")
            return tx.read("Patient", teams[0]["subject"]["reference"].split("/", 1)[1])
    finally:
        platform.close()


def _cmd(args: argparse.Namespace) -> int:
    patient = _demo_patient(args.patient)
    kind = "er" if args.er else "discharge" if args.discharge else "admission"
    at = time.strftime("%Y%m%d%H%M%S")
    stay = args.stay or f"DEMO{at}"
    ack = send_mllp(args.host, args.mllp_port, admission_message(patient, kind, stay, at))
    msa = next((s for s in ack.split("\r") if s.startswith("MSA|")), "MSA|??")
    name = patient["name"][0]
    print(
        f"{kind} of {name.get('family')} {' '.join(name.get('given', []))} "
        f"(Patient/{patient['id']}, stay {stay}) sent: ACK {msa.split('|')[1]}"
    )
    return 0 if msa.split("|")[1] in ("AA", "CA") else 1


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "demo-admission",
        help="play a hospital: send an admission (or ER arrival, discharge) for a demo patient",
    )
    parser.add_argument("--patient", help="Patient/ID (default: a patient of the demo GP)")
    parser.add_argument("--er", action="store_true", help="an ER arrival (A04, PV1-2 = E)")
    parser.add_argument("--discharge", action="store_true", help="a discharge (A03)")
    parser.add_argument("--stay", help="stay number (default: a new one); reuse it to discharge")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--mllp-port", type=int, default=2575)
    parser.set_defaults(func=_cmd)
