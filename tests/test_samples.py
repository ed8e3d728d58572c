"""Every sample block of README.md and docs/*.md is what its commands print today (tests/samples.py
says how blocks are marked; ``python -m tests.samples --write`` regenerates them all)."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Callable

import psycopg
import pytest
from psycopg import conninfo

from auditor.demo import write_story
from tests.samples import SHOWN_DB, SHOWN_HOST, WRITE_ENV, Sample, all_samples, comparable, render, write_block

#: The story databases samples run on, by the name a marker gives.
STORIES: dict[str, Callable[[psycopg.Connection], dict[str, str] | None]] = {
    "demo": write_story,  # the demo's: shop, search, payments, checkout, billing, frontend, worker
    "empty": lambda conn: None,  # a controller database with no app yet
}


#: The server's system identifier as samples show it.
SHOWN_SYSTEM_ID = "7300000000000000001"


def _shown_as(db, workdir: str) -> Callable[[str], str]:
    """How the test server's own names look in a sample: its socket directory, database name,
    system identifier and the working directory replaced by stable ones."""
    params = conninfo.conninfo_to_dict(db.dsn)
    host, name = str(params["host"]), str(params["dbname"])
    system_id = str(db.scalar("SELECT system_identifier FROM pg_control_system()"))

    def shown(text: str) -> str:
        return (text.replace(f"{workdir}/", "").replace(workdir, ".").replace(system_id, SHOWN_SYSTEM_ID)
                .replace(f"{host}:", f"{SHOWN_HOST}:").replace(f"/{name} ", f"/{SHOWN_DB} ")
                .replace(f"/{name}\n", f"/{SHOWN_DB}\n").replace(host, SHOWN_HOST).replace(name, SHOWN_DB))
    return shown


def test_every_marker_names_a_known_story_and_runs_something():
    found = all_samples()
    assert len(found) >= 5
    for sample in found:
        assert sample.story in STORIES, sample.id
        assert any(c.shown for c in sample.commands), sample.id


def _seeded_uuids(monkeypatch: pytest.MonkeyPatch) -> None:
    """The story's rows and the plans' copies get the same uuids on every run, so a regenerated
    sample changes only where the output did (and rows the tool orders by uuid keep their order)."""
    rng = random.Random(17)
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=rng.getrandbits(128), version=4))


@pytest.mark.parametrize("sample", all_samples(), ids=lambda s: s.id)
def test_sample_is_real_output(sample: Sample, make_db, tmp_path, monkeypatch):
    _seeded_uuids(monkeypatch)
    db = make_db(28)
    names = STORIES[sample.story](db.conn)
    body = render(sample, db.dsn, tmp_path, _shown_as(db, str(tmp_path)), names)
    if os.environ.get(WRITE_ENV):
        if comparable(body) != comparable(sample.body):  # only what changed: no churn of times and checksums
            write_block(sample, body)
        return
    assert comparable(body) == comparable(sample.body), (
        f"{sample.id} differs from what its commands print; regenerate: .venv/bin/python -m tests.samples --write")
