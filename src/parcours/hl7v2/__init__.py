"""Receiving side of IHE PAM FR 2.11.1 (HL7 v2.5 over MLLP) into the FHIR store.

Layers, each in its own module:

    framing   MLLP byte stream -> frames (0x0B ... 0x1C 0x0D), size limit
    er7       frame bytes -> decoded ``Message`` (charset from MSH-18, escapes)
    ack       ``Message`` + outcome -> ACK (original or enhanced mode, ERR segments)
    inbox     durable table of every received frame; idempotency on MSH-3/4 + MSH-10
    mapping_patient / mapping_encounter   PID/ZFD -> Patient, PV1/ZBE -> Encounter
    resolver  the identity seam (``PatientResolver``) and the identifier cross-reference
    apply     one message -> FHIR writes, inside one store transaction
    receiver  the pipeline: parse, check, commit to the inbox, apply, acknowledge
    server    asyncio MLLP listener (``MllpServer``, ``serve_mllp``)
    cli       ``parcours hl7 messages|show|replay|discard|purge`` sub-commands
"""

from parcours.hl7v2.receiver import Receiver
from parcours.hl7v2.server import MllpServer, serve_mllp
from parcours.hl7v2.settings import Hl7Settings

__all__ = ["Hl7Settings", "MllpServer", "Receiver", "serve_mllp"]
