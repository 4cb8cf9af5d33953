"""`parcours pathways …` and the library in a new database (`parcours db upgrade`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from parcours.cli import main
from parcours.pathways import dump_yaml, load_yaml, load_yaml_file
from parcours.pathways.yaml_io import iter_library

from .test_engine import NEW_PATHWAY


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PARCOURS_DATABASE_URL", database_url)
    monkeypatch.setenv("PARCOURS_LOG_JSON", "false")
    return database_url


def test_db_upgrade_loads_the_library_once(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade"]) == 0
    out = capsys.readouterr().out
    assert out.count(": created") == len(list(iter_library())) == 7
    assert main(["db", "upgrade"]) == 0
    assert "pathway" not in capsys.readouterr().out  # unchanged versions are left alone
    assert main(["pathways", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert sorted(line.split("\t")[0] for line in listed) == sorted(
        f"{load_yaml_file(p).id}-{load_yaml_file(p).version}" for p in iter_library()
    )


def test_load_export_and_new_version(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = tmp_path / "v1.yaml"
    first.write_text(NEW_PATHWAY, encoding="utf-8")
    assert main(["pathways", "load", str(first)]) == 0
    assert "fall-prevention 0.1.0: created" in capsys.readouterr().out
    assert main(["pathways", "export", "fall-prevention"]) == 0
    exported = capsys.readouterr().out
    assert load_yaml(exported) == load_yaml(NEW_PATHWAY)
    assert exported == dump_yaml(load_yaml(NEW_PATHWAY))
    # The same version with another content is refused; a new version retires the old one.
    changed = tmp_path / "changed.yaml"
    changed.write_text(NEW_PATHWAY.replace("P7D}\n        form", "P5D}\n        form"), "utf-8")
    assert main(["pathways", "load", str(changed)]) == 1
    assert "new version" in capsys.readouterr().err
    changed.write_text(
        NEW_PATHWAY.replace("0.1.0", "0.2.0").replace("P7D}\n        form", "P5D}\n        form"),
        "utf-8",
    )
    assert main(["pathways", "load", str(changed)]) == 0
    capsys.readouterr()
    assert main(["pathways", "list", "--all"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:2] for line in lines] == [
        ["fall-prevention-0.1.0", "retired"],
        ["fall-prevention-0.2.0", "active"],
    ]


def test_check_reports_lines_and_sweep_runs(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(NEW_PATHWAY.replace("owner: physio", "owner: surgeon"), "utf-8")
    assert main(["pathways", "check", str(bad)]) == 1
    assert (
        f"{bad}:31: steps[1].tasks[0].owner: no role has the id 'surgeon'"
        in capsys.readouterr().err
    )
    assert main(["pathways", "sweep", "--at", "2030-01-01T00:00:00Z"]) == 0
    assert "0 overdue tasks" in capsys.readouterr().out
