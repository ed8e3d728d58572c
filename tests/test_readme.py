"""Every command the README shows is run here (or by CI), against a real controller database."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import conninfo

from auditor.cli import cli
from auditor.demo import write_story
from tests.testbed import server_binary

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
#: The README's psql-style flags example; run with the test database's own host, port, user and name.
PSQL_FLAGS = "-h /var/run/postgresql -p 5432 -U controller_audit -d deis"


def _shell_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README, flags=re.DOTALL)


def _commands(prefix: str) -> list[str]:
    lines = []
    for block in _shell_blocks():
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith(prefix):
                lines.append(line)
    return lines


def test_setup_commands_are_the_demo_and_the_ci_test_command():
    setup = [line for block in _shell_blocks() for line in block.splitlines() if line.startswith("python3 -m venv")]
    demo, tests = setup
    assert demo.endswith(".venv/bin/controller-audit demo")  # run end to end by tests/test_demo.py
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests in ci, ".ci/run must run exactly the README's test command"


def test_every_readme_command_runs(make_db, tmp_path, monkeypatch):
    assert f"controller-audit check {PSQL_FLAGS}" in README
    db = make_db(28)
    names = write_story(db.conn)
    shop_config = db.scalar(
        "SELECT r.config_id::text FROM api_release r JOIN api_app a ON a.uuid = r.app_id "
        "WHERE a.id = %s ORDER BY version DESC LIMIT 1", (names["poisoned"],))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db.dsn)
    (tmp_path / "textfile").mkdir()
    commands = _commands("controller-audit ")
    assert len(commands) >= 15
    runner = CliRunner()
    params = conninfo.conninfo_to_dict(db.dsn)
    psql_flags = (f"-h {params['host']} -p {params.get('port') or 5432} -U {params['user']} "
                  f"-d {params['dbname']}")
    for line in commands:
        line = line.replace("260a1cf4-0000-4000-8000-000000000000", shop_config)
        line = line.replace(PSQL_FLAGS, psql_flags)
        line = line.replace("/textfile/", str(tmp_path / "textfile") + "/")
        args = shlex.split(line)[1:]
        redirect = None
        if ">" in args:
            redirect = args[args.index(">") + 1]
            args = args[: args.index(">")]
        result = runner.invoke(cli, args, input="y\n")
        assert result.exit_code in (0, 1, 2), f"{line}: exit {result.exit_code}: {result.output}"
        assert "Traceback" not in result.output
        if redirect:
            Path(redirect).write_text(result.stdout)
    for psql_line in _commands("psql "):
        args = shlex.split(psql_line.replace('"$DATABASE_URL"', shlex.quote(db.dsn)))
        done = subprocess.run([server_binary("psql"), *args[1:]], capture_output=True, text=True, env=dict(os.environ))
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "audit.json").read_text().startswith("{")
    assert (tmp_path / "textfile" / "controller_audit.prom").exists()
    with psycopg.connect(db.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM api_release").fetchone()[0] > 0


@pytest.mark.parametrize("sql", re.findall(r"```sql\n(.*?)```", README, flags=re.DOTALL))
def test_readme_sql_runs(make_db, sql):
    db = make_db(28)
    db.conn.execute(sql.replace("'...'", "'pw-for-readme'").replace("DATABASE deis", f'DATABASE "{db.name}"'))
    for role in re.findall(r"CREATE ROLE (\w+)", sql):
        db.conn.execute(f"DROP OWNED BY {role}")
        db.conn.execute(f"DROP ROLE {role}")
