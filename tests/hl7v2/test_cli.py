"""``parcours hl7 …`` sub-commands as the CLI will call them."""

from __future__ import annotations

import argparse
import io
import json

from parcours.hl7v2 import cli
from parcours.hl7v2.settings import Hl7Settings

from .conftest import Live
from .db import resources, rows
from .messages import FAC, Pam


def _run(live: Live, *argv: str) -> tuple[int, list[dict]]:  # type: ignore[type-arg]
    parser = argparse.ArgumentParser(prog="parcours")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["hl7", *argv])
    out = io.StringIO()
    code = cli.run(args, live.store, settings=Hl7Settings(allow_test_ins=True), out=out)
    text = out.getvalue().strip()
    if not text:
        return code, []
    if text.startswith("{\n"):
        return code, [json.loads(text)]
    return code, [json.loads(line) for line in text.splitlines()]


def test_list_show_replay_discard_purge(live: Live) -> None:
    live.send(Pam("A28", "C1").render())
    live.send(Pam("A47", "C2", ipp="222", mrg=f"111^^^{FAC}^PI").render())  # fails: unknown
    live.send(Pam("A47", "C3", ipp="333", mrg=f"444^^^{FAC}^PI").render())  # fails: unknown
    code, listed = _run(live, "messages")
    assert code == 0 and [m["status"] for m in listed] == ["applied", "failed", "failed"]
    assert "MARTIN" not in json.dumps(listed)  # no identity in listings
    _, failed = _run(live, "messages", "--status", "failed", "--trigger", "A47")
    assert [m["control_id"] for m in failed] == ["C2", "C3"]
    _, stats = _run(live, "messages", "--stats")
    assert stats == [{"applied": 1, "failed": 2}]
    _, [shown] = _run(live, "show", str(failed[0]["id"]), "--raw")
    assert shown["raw"].startswith("MSH|") and "204" in shown["error"]
    live.send(Pam("A28", "C4", ipp="111").render())  # the missing patient arrives
    code, replayed = _run(live, "replay", "--status", "failed", "--control-id", "C2")
    assert code == 0 and replayed[0]["status"] == "applied"
    code, replayed = _run(live, "replay", str(failed[1]["id"]))
    assert code == 2 and replayed[0]["status"] == "failed"
    _, [discarded] = _run(live, "discard", str(failed[1]["id"]), "--reason", "ticket 42")
    assert discarded == {"discarded": 1}
    assert [r.status for r in rows(live.store)] == ["applied", "applied", "ignored", "applied"]
    _, [purged] = _run(live, "purge", "--older-than-days", "0")
    assert purged["purged"] == 4
    assert len(resources(live.store, "Patient")) == 2


def test_register_with_open_store(live: Live) -> None:
    parser = argparse.ArgumentParser(prog="parcours")
    cli.register(parser.add_subparsers(dest="command"), open_store=lambda: live.store)
    args = parser.parse_args(["hl7", "messages", "--stats"])
    assert args.func(args) == 0
