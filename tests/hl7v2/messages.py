"""Builders for PAM FR test messages (fictional identities, test INS authority) and ACKs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from parcours.identity.ins import ins_key

FAC = "CH-TEST&330000123&M"
INS_OID = "1.2.250.1.213.1.4.10"


def make_ins(first13: str) -> str:
    return first13 + ins_key(first13)


@dataclass
class Ack:
    raw: bytes
    segments: list[list[str]]

    @property
    def code(self) -> str:
        return self.msa[1]

    @property
    def msa(self) -> list[str]:
        return next(s for s in self.segments if s[0] == "MSA")

    @property
    def acked_id(self) -> str:
        return self.msa[2] if len(self.msa) > 2 else ""

    @property
    def errors(self) -> list[list[str]]:
        return [s for s in self.segments if s[0] == "ERR"]

    def error_codes(self) -> list[str]:
        return [e[3].split("^")[0] for e in self.errors]

    def error_locations(self) -> list[str]:
        return [e[2] for e in self.errors]

    @property
    def msh(self) -> list[str]:
        return self.segments[0]


def parse_ack(data: bytes) -> Ack:
    text = data.decode("latin-1")
    return Ack(data, [line.split("|") for line in text.split("\r") if line])


@dataclass
class Pam:
    """One PAM FR message; fields filled with sensible defaults for the test hospital."""

    trigger: str
    control_id: str
    ipp: str = "700123"
    family: str = "MARTIN"
    given: str = "LEA"
    birth: str = "19850701"
    sex: str = "F"
    reliability: str = "PROV"
    ins: str | None = None
    ins_oid: str = INS_OID
    visit: str = "V1"
    nda: str = ""
    patient_class: str = "I"
    movement: str = "MV1"
    movement_date: str = "20250301135500"
    action: str = "INSERT"
    historic: str = "N"
    original: str = ""
    uf: str = "4010"
    uf_label: str = "CARDIO"
    mrg: str = ""
    version: str = "2.5^FRA^2.11"
    charset: str = "UNICODE UTF-8"
    app: str = "GAM"
    facility: str = "CH-TEST"
    accept_ack: str = ""
    app_ack: str = ""
    extra_pid: dict[int, str] = field(default_factory=dict)
    extra_segments: list[str] = field(default_factory=list)
    pv1_extra: dict[int, str] = field(default_factory=dict)
    names: str | None = None
    zfd: str | None = None

    def structure(self) -> str:
        return {
            "A28": "ADT_A05",
            "A31": "ADT_A05",
            "A40": "ADT_A39",
            "A47": "ADT_A30",
        }.get(self.trigger, "ADT_A01")

    def pid(self) -> str:
        ids = f"{self.ipp}^^^{FAC}^PI"
        if self.ins is not None:
            ids += f"~{self.ins}^^^ASIP-SANTE-INS-NIR&{self.ins_oid}&ISO^INS"
        fields: dict[int, str] = {
            1: "1",
            3: ids,
            5: self.names
            if self.names is not None
            else f"{self.family}^{self.given}^{self.given}^^^^L",
            7: self.birth,
            8: self.sex,
            11: "12 RUE DES LILAS^^DIJON^^21000^FRA^H~^^^^^FRA^BDL^^21231",
            32: self.reliability,
        }
        if self.nda:
            fields[18] = f"{self.nda}^^^{FAC}^AN"
        fields.update(self.extra_pid)
        return _segment("PID", fields)

    def render(self) -> str:
        msh = (
            f"MSH|^~\\&|{self.app}|{self.facility}|PARCOURS|REGION|20250301140000||"
            f"ADT^{self.trigger}^{self.structure()}|{self.control_id}|P|{self.version}|||"
            f"{self.accept_ack}|{self.app_ack}|FRA|{self.charset}"
        )
        segs = [msh, "EVN||20250301140000", self.pid()]
        if self.mrg:
            segs.append(f"MRG|{self.mrg}")
        if self.trigger not in ("A28", "A31", "A40", "A47"):
            pv1: dict[int, str] = {
                1: "1",
                2: self.patient_class,
                3: f"{self.uf}^^^{FAC}",
                19: f"{self.visit}^^^{FAC}^VN",
            }
            pv1.update(self.pv1_extra)
            segs.append(_segment("PV1", pv1))
            uf = f"{self.uf_label}^^^^^{FAC}^UF^^^{self.uf}"
            segs.append(
                f"ZBE|{self.movement}^CH-TEST^330000123^M|{self.movement_date}||{self.action}|"
                f"{self.historic}|{self.original}|{uf}|{uf}|HMS"
            )
        else:
            segs.append("PV1|1|N")
        if self.zfd is not None:
            segs.append(self.zfd)
        segs.extend(self.extra_segments)
        return "\r".join(segs) + "\r"

    def bytes(self, encoding: str = "utf-8") -> bytes:
        return self.render().encode(encoding)


def _segment(name: str, fields: dict[int, str]) -> str:
    top = max(fields)
    return "|".join([name, *(fields.get(i, "") for i in range(1, top + 1))])


def identifier_values(resource: dict[str, Any], system_prefix: str = "") -> list[str]:
    return [
        i["value"]
        for i in resource.get("identifier") or []
        if str(i.get("system", "")).startswith(system_prefix)
    ]
