"""Malformed connection strings never leak their password (issue 13, case 3).

A generated corpus of URLs and key=value strings whose passwords hold the characters that
break them (spaces, @, #, /, ?, %, quotes, backslashes, =) is thrown at every command that
connects; neither the password nor any part of it of 4+ characters may appear in stdout,
stderr or any file the command leaves.  Passwords are built from upper-case consonants around
the breaking characters, so none of their 4-character pieces occurs in the tool's own words.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from auditor.cli import cli
from tests.damage import DamagingController

_CLEARED_ENV = {name: None for name in ("DATABASE_URL", "PGPASSWORD", "PGSERVICE", "PGSERVICEFILE", "PGPASSFILE",
                                        "DEIS_DATABASE_USER", "DEIS_DATABASE_PASSWORD", "DEIS_DATABASE_NAME",
                                        "DEIS_DATABASE_SERVICE_HOST", "DEIS_DATABASE_SERVICE_PORT",
                                        "CONTROLLER_AUDIT_DEBUG")}

_CORE = st.text(alphabet="BCDFGHJKMNPQRSTVWXZ", min_size=4, max_size=7)
_BREAKERS = st.sampled_from([" ", "@", "#", "/", "?", "%", "%zz", "%G", "'", '"', "\\", "=", "&", ":", "[", "]",
                             " x=", "\t", "@/", "=' ", "a b", "#@", "/?@", "''", "\\'"])
PASSWORDS = st.builds(lambda a, b, c, d, e: a + b + c + d + e, _CORE, _BREAKERS, _CORE,
                      st.sampled_from(["", "@", " ", "/"]), st.sampled_from(["", "QRST"]))

#: Where the password goes; port 1 on the loopback refuses at once when a string does parse.
FORMS = (
    "postgresql://deis:{pw}@127.0.0.1:1/deis?connect_timeout=2",
    "postgres://deis:{pw}@127.0.0.1:1/deis",
    "postgresql://127.0.0.1:1/deis?user=deis&password={pw}",
    "host=127.0.0.1 port=1 user=deis password={pw} dbname=deis connect_timeout=2",
    "host=127.0.0.1 port=1 user=deis password='{pw}' dbname=deis",
    "password={pw} host=127.0.0.1 port=1 dbname=deis",
)


def commands(dsn: str) -> Iterator[tuple[tuple[str, ...], dict[str, str | None]]]:
    """Every command that connects, with the string as ``--dsn`` (and once as DATABASE_URL)."""
    for args in (
        ("check", "--dsn", dsn, "--format", "json", "-o", "report.json"),
        ("check", "--dsn", dsn, "--format", "prometheus", "-o", "report.prom"),
        ("info", "--dsn", dsn),
        ("explain", "web", "--dsn", dsn),
        ("blast-radius", "app", "web", "--dsn", dsn),
        ("plan", "--dsn", dsn, "-o", "new.plan"),
        ("apply", "repair.plan", "--dsn", dsn, "--yes", "--undo-file", "new.undo"),
        ("undo", "repair.undo", "--dsn", dsn, "--yes"),
        ("baseline", "create", "baseline.json", "--dsn", dsn),
        ("demo", "--dsn", dsn),
    ):
        yield args, _CLEARED_ENV
    yield ("check", "--format", "json"), {**_CLEARED_ENV, "DATABASE_URL": dsn}


@contextmanager
def fresh_directory(base: Path) -> Iterator[Path]:
    """Work in a new empty directory under ``base`` for the block."""
    before = os.getcwd()
    with tempfile.TemporaryDirectory(dir=base) as here:
        os.chdir(here)
        try:
            yield Path(here)
        finally:
            os.chdir(before)


def pieces(password: str) -> set[str]:
    """The password and every part of it of 4 characters (longer parts contain one)."""
    return {password} | {password[i:i + 4] for i in range(len(password) - 3)}


@pytest.fixture(scope="module")
def reviewed_files(pg_server, tmp_path_factory) -> Path:
    """A real plan and undo file (apply and undo read them before connecting)."""
    from tests.repairs.helpers import story

    name = pg_server.create_database(28)
    dsn = pg_server.dsn(name)
    import psycopg


    with psycopg.connect(dsn, autocommit=True) as conn:
        story(DamagingController(conn))
    workdir = tmp_path_factory.mktemp("reviewed")
    runner = CliRunner()
    with fresh_directory(workdir) as here:
        assert runner.invoke(cli, ["plan", "--dsn", dsn, "-o", "repair.plan"], env=_CLEARED_ENV).exit_code == 0
        shutil.copy(here / "repair.plan", workdir / "repair.plan")
        applied = runner.invoke(cli, ["apply", "repair.plan", "--dsn", dsn, "--yes", "--undo-file", "repair.undo"],
                                env=_CLEARED_ENV)
        assert applied.exit_code == 0, applied.output
        shutil.copy(here / "repair.undo", workdir / "repair.undo")
    pg_server.drop_database(name)
    return workdir


def _assert_nothing_leaks(dsn: str, password: str, reviewed: Path) -> None:
    runner = CliRunner()
    secrets = pieces(password)
    for args, env in commands(dsn):
        with fresh_directory(reviewed) as here:
            for name in ("repair.plan", "repair.undo"):
                shutil.copy(reviewed / name, here / name)
            result = runner.invoke(cli, list(args), env=env, catch_exceptions=False)
            assert result.exit_code == 3, (args[0], result.output)
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("controller-audit: "), (args[0], result.stderr)
            texts = {"stdout": result.stdout, "stderr": result.stderr}
            for path in here.rglob("*"):
                if path.is_file() and path.name not in ("repair.plan", "repair.undo"):
                    texts[path.name] = path.read_bytes().decode("utf-8", errors="replace")
            for where, text in texts.items():
                leaked = sorted(s for s in secrets if s in text)
                assert not leaked, (args[0], where, leaked, text[-300:])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@example(password="HNTR2 WTH SPC", form=0)  # the issue's examples, in the corpus's letters
@example(password="P@SS#ZX9SCRT", form=0)
@example(password="ZX9 SCRT", form=5)
@example(password="SCRT?PW#1@X", form=1)
@given(password=PASSWORDS, form=st.integers(min_value=0, max_value=len(FORMS) - 1))
def test_no_part_of_a_password_in_a_malformed_string_leaks(reviewed_files, password, form):
    dsn = FORMS[form].format(pw=password)
    _assert_nothing_leaks(dsn, password, reviewed_files)


def test_the_issue_examples_say_the_string_cannot_be_parsed(reviewed_files):
    runner = CliRunner()
    for dsn in ("postgresql://deis:hunter2 with space@db/deis", "postgresql://sec:p@ss#Zx9Secret@host/db",
                "host=db password=Zx9 Secret", "postgresql://u:ab/cdef@db/deis"):
        result = runner.invoke(cli, ["check", "--dsn", dsn], env=_CLEARED_ENV)
        assert result.exit_code == 3
        assert result.stderr.startswith("controller-audit: invalid connection string: the connection string from "
                                        "--dsn cannot be used: "), result.stderr
        assert "it is not shown: it may hold a password" in result.stderr
