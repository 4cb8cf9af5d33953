"""Third-party FHIR clients against the running server: fhirpy (async) and fhirclient."""

from __future__ import annotations

import asyncio
import uuid

from fhirclient import server as fhirclient_server
from fhirclient.models.fhirsearch import FHIRSearch
from fhirclient.models.humanname import HumanName
from fhirclient.models.patient import Patient
from fhirpy import AsyncFHIRClient

from fhir_server import TOKEN, Server


def test_fhirpy_create_read_search_and_page(server: Server) -> None:
    family = f"Py{uuid.uuid4().hex[:10]}"

    async def scenario() -> None:
        client = AsyncFHIRClient(server.base, authorization=f"Bearer {TOKEN}")
        for n in range(5):
            patient = client.resource("Patient", name=[{"family": family, "given": [f"G{n}"]}])
            await patient.save()
            assert patient.id
        fetched = await client.reference("Patient", patient.id).to_resource()
        assert fetched["name"][0]["given"] == ["G4"]
        fetched["active"] = True
        await fetched.save()
        again = await client.resources("Patient").search(_id=patient.id).get()
        assert again["active"] is True
        assert again["meta"]["versionId"] == "2"
        everyone = await client.resources("Patient").search(family=family).limit(2).fetch_all()
        assert len(everyone) == 5
        await fetched.delete()  # type: ignore[no-untyped-call]
        # (fhirpy's count() adds Aidbox's _totalMethod parameter, which we refuse as unknown.)
        assert len(await client.resources("Patient").search(family=family).fetch_all()) == 4

    asyncio.run(scenario())


def test_fhirclient_create_read_search_and_page(server: Server) -> None:
    family = f"Fc{uuid.uuid4().hex[:10]}"
    smart = fhirclient_server.FHIRServer(None, base_uri=server.base)
    smart.session.headers["Authorization"] = f"Bearer {TOKEN}"
    smart.get_capability()
    assert smart.capabilityStatement.fhirVersion == "4.0.1"
    created_ids = []
    for n in range(3):
        patient = Patient()
        patient.name = [HumanName({"family": family, "given": [f"G{n}"]})]
        created = patient.create(smart)
        assert created is not None
        created_ids.append(created["id"])
    read = Patient.read(created_ids[0], smart)
    assert read.name[0].family == family
    read.gender = "other"
    read.update(smart)
    assert Patient.read(created_ids[0], smart).gender == "other"
    search = FHIRSearch(Patient, {"family": family, "_count": "2"})
    found = [p.id for p in search.perform_resources_iter(smart)]
    assert sorted(found) == sorted(created_ids)
    pages = list(FHIRSearch(Patient, {"family": family, "_count": "2"}).perform_iter(smart))
    assert len(pages) == 2
