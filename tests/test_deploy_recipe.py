"""The cron recipe works (issue 17): the Dockerfile, the CronJob in docs/deploy/, its role and Secret.

There is no Docker engine or cluster here, so what can be checked is checked: the manifests
parse and pass the restricted Pod Security Standard's rules, the command the CronJob runs is
run as it would run (its argv, its environment from the Secret, as the SELECT-only role the
recipe creates) against a real controller database, the role grants what the README says, and
the Dockerfile's own build and install steps make a working ``controller-audit``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import threading
import venv
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from psycopg import conninfo

import auditor
from auditor.cli import cli
from auditor.demo import write_story
from tests.cli.test_check import parse_prometheus
from tests.helpers import messages
from tests.test_package import _run

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "docs" / "deploy"
README = (ROOT / "README.md").read_text(encoding="utf-8")
SCRIPT = next(iter(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]))


# --- reading the recipe -----------------------------------------------------------------------

def documents(name: str) -> list[dict[str, Any]]:
    """The YAML documents of ``docs/deploy/NAME``."""
    with (DEPLOY / name).open(encoding="utf-8") as handle:
        return [d for d in yaml.safe_load_all(handle) if d is not None]


def one(name: str, kind: str) -> dict[str, Any]:
    (doc,) = [d for d in documents(name) if d["kind"] == kind]
    return doc


def strategic_merge(base: Any, patch: Any) -> Any:
    """The part of Kubernetes' strategic merge patch the recipe's patch uses: maps merge, ``null``
    removes a key, lists of named items merge by ``name`` (``$patch: delete`` removes one), other
    lists are replaced.  (Checked once against ``kubectl patch --local``.)"""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = strategic_merge(merged[key], value) if key in merged else value
        return merged
    named = isinstance(base, list) and isinstance(patch, list) and all(
        isinstance(item, dict) and "name" in item for item in base + patch)
    if named:
        merged_list = list(base)
        for item in patch:
            at = next((n for n, old in enumerate(merged_list) if old["name"] == item["name"]), None)
            if item.get("$patch") == "delete":
                if at is not None:
                    del merged_list[at]
            elif at is None:
                merged_list.append(item)
            else:
                merged_list[at] = strategic_merge(merged_list[at], item)
        return merged_list
    return patch


def cronjob() -> dict[str, Any]:
    return one("cronjob.yaml", "CronJob")


def textfile_cronjob() -> dict[str, Any]:
    """The CronJob of the node-exporter route: cronjob.yaml patched with textfile-patch.yaml."""
    return strategic_merge(cronjob(), one("textfile-patch.yaml", "CronJob"))


def pod_spec(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def container(spec: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in spec["containers"] if c["name"] == name]
    return found


def keys_anywhere(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for v in node.values() for k in keys_anywhere(v)}
    if isinstance(node, list):
        return {k for v in node for k in keys_anywhere(v)}
    return set()


# --- the restricted Pod Security Standard, as far as it can be read from a manifest -----------

ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                   "projected", "secret"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}


def restricted_violations(spec: dict[str, Any]) -> list[str]:
    """What in a pod spec the "restricted" Pod Security Standard (Kubernetes 1.25+) forbids,
    plus this recipe's own rules: a read-only root filesystem, requests and limits."""
    problems = []
    pod = spec.get("securityContext") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            problems.append(f"pod: {flag}")
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            problems.append(f"volume {volume['name']}: {sorted(kinds - ALLOWED_VOLUMES)}")
    for sysctl in pod.get("sysctls") or []:
        if sysctl["name"] not in SAFE_SYSCTLS:
            problems.append(f"pod: sysctl {sysctl['name']}")
    if (pod.get("seLinuxOptions") or {}).get("user") or (pod.get("seLinuxOptions") or {}).get("role"):
        problems.append("pod: seLinuxOptions user/role")
    if pod.get("runAsUser") == 0:
        problems.append("pod: runAsUser 0")
    if (pod.get("appArmorProfile") or {}).get("type") == "Unconfined":
        problems.append("pod: AppArmor unconfined")
    pod_seccomp = (pod.get("seccompProfile") or {}).get("type")
    for c in (spec.get("initContainers") or []) + spec["containers"]:
        own = c.get("securityContext") or {}
        where = f"container {c['name']}"
        if own.get("privileged"):
            problems.append(f"{where}: privileged")
        if own.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation is not false")
        caps = own.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            problems.append(f"{where}: capabilities do not drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"{where}: adds capabilities {caps['add']}")
        if not own.get("runAsNonRoot", pod.get("runAsNonRoot")):
            problems.append(f"{where}: runAsNonRoot is not true")
        if own.get("runAsUser", pod.get("runAsUser")) in (0, None):
            problems.append(f"{where}: no non-zero runAsUser")
        if own.get("seccompProfile", {}).get("type", pod_seccomp) not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where}: seccompProfile is not RuntimeDefault or Localhost")
        if own.get("procMount", "Default") != "Default":
            problems.append(f"{where}: procMount")
        if (own.get("appArmorProfile") or {}).get("type") == "Unconfined":
            problems.append(f"{where}: AppArmor unconfined")
        if any(p.get("hostPort") for p in c.get("ports") or []):
            problems.append(f"{where}: hostPort")
        if own.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: root filesystem is writable")
        resources = c.get("resources") or {}
        for part in ("requests", "limits"):
            if set(resources.get(part) or {}) < {"cpu", "memory"}:
                problems.append(f"{where}: {part} lack cpu or memory")
    return problems


def test_the_checker_rejects_what_the_old_recipe_did():
    old = {  # the CronJob the README showed before: hostPath, no security context, no limits
        "restartPolicy": "Never",
        "containers": [{"name": "controller-audit", "image": "python:3.11-slim", "command": ["sh", "-c"],
                        "volumeMounts": [{"name": "textfile", "mountPath": "/textfile"}]}],
        "volumes": [{"name": "textfile", "hostPath": {"path": "/var/lib/node_exporter/textfile_collector"}}],
    }
    problems = restricted_violations(old)
    assert "volume textfile: ['hostPath']" in problems
    assert {"container controller-audit: allowPrivilegeEscalation is not false",
            "container controller-audit: runAsNonRoot is not true",
            "container controller-audit: seccompProfile is not RuntimeDefault or Localhost",
            "container controller-audit: capabilities do not drop ALL",
            "container controller-audit: limits lack cpu or memory"} <= set(problems)


# --- the manifests ------------------------------------------------------------------------------

def test_every_manifest_parses_and_none_needs_a_host_path():
    kinds = {name: [d["kind"] for d in documents(name)] for name in
             ("cronjob.yaml", "textfile-exporter.yaml", "textfile-patch.yaml", "secret.example.yaml")}
    assert kinds == {"cronjob.yaml": ["CronJob"],
                     "textfile-exporter.yaml": ["PersistentVolumeClaim", "Deployment", "Service"],
                     "textfile-patch.yaml": ["CronJob"], "secret.example.yaml": ["Secret"]}
    for name in kinds:
        assert "hostPath" not in keys_anywhere(documents(name)), name
        assert {d["metadata"]["namespace"] for d in documents(name)} == {"deis"}


@pytest.mark.parametrize("route", ["pushgateway", "textfile"])
def test_the_pods_pass_the_restricted_pod_security_standard(route):
    job = cronjob() if route == "pushgateway" else textfile_cronjob()
    assert restricted_violations(pod_spec(job)) == []
    exporter = one("textfile-exporter.yaml", "Deployment")["spec"]["template"]["spec"]
    assert restricted_violations(exporter) == []


def test_the_cronjob_runs_one_audit_at_a_time_on_a_schedule_and_keeps_a_short_history():
    spec = cronjob()["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    minute, hour, day, month, weekday = spec["schedule"].split()
    assert minute == "*/15" and (hour, day, month, weekday) == ("*", "*", "*", "*")
    assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    assert spec["startingDeadlineSeconds"] > 0
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0 and job["activeDeadlineSeconds"] > 0
    pod = pod_spec(cronjob())
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    audit = container(pod, "audit")
    tmp = [m for m in audit["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert tmp and "emptyDir" in next(v for v in pod["volumes"] if v["name"] == tmp[0]["name"])


def test_the_image_is_this_version_built_by_the_dockerfile_and_runs_its_entrypoint():
    audit = container(pod_spec(cronjob()), "audit")
    assert audit["image"].rsplit(":", 1)[1] == auditor.__version__
    assert audit["command"] == [SCRIPT] == dockerfile_stages()[-1].entrypoint
    assert pod_spec(cronjob())["securityContext"]["runAsUser"] == dockerfile_stages()[-1].uid


def audit_argv(job: dict[str, Any]) -> list[str]:
    audit = container(pod_spec(job), "audit")
    return audit["command"] + audit["args"]


def test_the_command_is_a_real_command_of_this_version():
    argv = audit_argv(cronjob())
    assert argv[:2] == [SCRIPT, "check"]
    group = cli.make_context(SCRIPT, argv[1:])
    command = cli.get_command(group, argv[1])
    assert command is not None
    params = command.make_context(argv[1], argv[2:], parent=group).params
    assert params["format"] == "prometheus" and params["fail_on"] == "never"
    assert params["output"] == "/textfile/controller_audit.prom"
    assert params["labels"] == {"cluster": "production"}


@pytest.mark.parametrize("route", ["pushgateway", "textfile"])
def test_the_textfile_lands_where_its_reader_looks(route):
    job = cronjob() if route == "pushgateway" else textfile_cronjob()
    pod = pod_spec(job)
    output = audit_argv(job)[audit_argv(job).index("--output") + 1]
    directory, filename = output.rsplit("/", 1)
    (mount,) = [m for m in container(pod, "audit")["volumeMounts"] if m["mountPath"] == directory]
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    if route == "pushgateway":
        assert volume == {"name": mount["name"], "emptyDir": {"sizeLimit": "16Mi"}}
        push = container(pod, "push")
        assert any(m["mountPath"] == directory and m["name"] == mount["name"] for m in push["volumeMounts"])
        script = push["command"][-1]
        assert f"f={output}\n" in script and '--data-binary "@$f"' in script
        assert "/metrics/job/controller-audit" in script
        return
    assert [c["name"] for c in pod["containers"]] == ["audit"]
    claim = one("textfile-exporter.yaml", "PersistentVolumeClaim")["metadata"]["name"]
    assert volume == {"name": mount["name"], "persistentVolumeClaim": {"claimName": claim}}
    exporter = one("textfile-exporter.yaml", "Deployment")["spec"]["template"]
    reader = exporter["spec"]["containers"][0]
    (read_dir,) = [a.split("=", 1)[1] for a in reader["args"] if a.startswith("--collector.textfile.directory=")]
    (read_mount,) = [m for m in reader["volumeMounts"] if m["mountPath"] == read_dir]
    read_volume = next(v for v in exporter["spec"]["volumes"] if v["name"] == read_mount["name"])
    assert read_volume["persistentVolumeClaim"]["claimName"] == claim and read_mount["readOnly"] is True
    assert filename.endswith(".prom")  # the textfile collector reads *.prom only
    term = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["labelSelector"]["matchLabels"].items() <= exporter["metadata"]["labels"].items()
    assert term["topologyKey"] == "kubernetes.io/hostname"


def test_the_credentials_come_from_the_select_only_roles_secret():
    env = container(pod_spec(cronjob()), "audit")["env"]
    (url,) = [e for e in env if e["name"] == "DATABASE_URL"]
    ref = url["valueFrom"]["secretKeyRef"]
    secret = one("secret.example.yaml", "Secret")
    assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
    assert conninfo.conninfo_to_dict(secret["stringData"][ref["key"]])["user"] == role_name()
    assert not any("database-creds" in json.dumps(e) for e in env)  # not the controller's read-write secret



def test_the_push_container_posts_the_textfile_to_the_pushgateway(tmp_path):
    """The push container's script, run by sh against a stand-in Pushgateway on the loopback."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed (the push container's image has it)")
    received: list[tuple[str, str, bytes]] = []

    class Pushgateway(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(("POST", self.path, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Pushgateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        push = container(pod_spec(cronjob()), "push")
        textfile = tmp_path / "textfile"
        textfile.mkdir()
        report = b"# TYPE controller_audit_up gauge\ncontroller_audit_up 1\n"
        (textfile / "controller_audit.prom").write_bytes(report)
        script = push["command"][-1].replace("/textfile/", f"{textfile}/")
        env = {"PATH": os.environ["PATH"],
               "PUSHGATEWAY_URL": f"http://127.0.0.1:{server.server_address[1]}"}
        done = subprocess.run([*push["command"][:-1], script], env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stderr
    finally:
        server.shutdown()
        server.server_close()
    assert received == [("POST", "/metrics/job/controller-audit", report)]



def test_the_docs_link_the_one_manifest_instead_of_copying_it():
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        assert "kind: CronJob" not in text and "hostPath:" not in text, page.name
    assert "(docs/deploy/cronjob.yaml)" in README
    assert "(deploy/cronjob.yaml)" in (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")


# --- the SELECT-only role ---------------------------------------------------------------------

_GRANT = re.compile(r"^GRANT\s+(.+?)\s+ON\s+(?:(DATABASE|SCHEMA|TABLE)\s+)?(.+?)\s+TO\s+(\S+)$", re.I | re.S)


def grants(sql_text: str) -> set[tuple[str, str, str, str]]:
    """Each (privilege, kind, object, grantee) the GRANT statements of ``sql_text`` give."""
    text = re.sub(r"--[^\n]*", "", sql_text)
    found = set()
    for statement in (s.strip() for s in text.split(";")):
        match = _GRANT.match(statement)
        if match:
            privileges, kind, objects, grantee = match.groups()
            for privilege in privileges.split(","):
                for obj in objects.split(","):
                    found.add((privilege.strip().upper(), (kind or "TABLE").upper(), obj.strip(), grantee))
    return found


def readme_role_sql() -> str:
    """The README's SQL block that creates the audit role (the repair role has its own)."""
    section = README.split("## Connecting, and a least-privilege role", 1)[1].split("\n## ", 1)[0]
    (block,) = [b for b in re.findall(r"```sql\n(.*?)```", section, flags=re.S) if f"CREATE ROLE {role_name()} " in b]
    return block


def role_name() -> str:
    return re.search(r"CREATE ROLE (\w+)", (DEPLOY / "audit-role.sql").read_text()).group(1)


def test_the_recipes_role_grants_exactly_what_the_readme_says():
    recipe = grants((DEPLOY / "audit-role.sql").read_text())
    readme = grants(readme_role_sql())
    assert recipe == readme
    assert {p for p, *_ in recipe} == {"CONNECT", "USAGE", "SELECT"}  # nothing that writes
    assert ("SELECT", "TABLE", "api_release", role_name()) in recipe


# --- the CronJob's command, run as the pod would run it ---------------------------------------

def pod_environment(job: dict[str, Any], secret_data: dict[str, str]) -> dict[str, str]:
    """The audit container's environment, its secretKeyRefs read from ``secret_data``."""
    env = {}
    for item in container(pod_spec(job), "audit")["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            env[item["name"]] = secret_data[item["valueFrom"]["secretKeyRef"]["key"]]
    return env


def test_the_cronjobs_command_writes_the_textfile_as_the_select_only_role(make_db, tmp_path):
    db = make_db(28)
    write_story(db.conn)
    role, password = role_name(), "Cr0n-Job-Pw"
    role_sql = (DEPLOY / "audit-role.sql").read_text()
    db.conn.execute(role_sql.replace("'CHANGE-ME'", f"'{password}'").replace("DATABASE deis", f'DATABASE "{db.name}"'))
    try:
        # The Secret's URL, pointed at the test server (a socket directory is a percent-encoded host).
        server = conninfo.conninfo_to_dict(db.dsn)
        secret = dict(one("secret.example.yaml", "Secret")["stringData"])
        secret["DATABASE_URL"] = (secret["DATABASE_URL"].replace("CHANGE-ME", password)
                                  .replace("deis-database:5432", f"{quote(server['host'], safe='')}:"
                                                                 f"{server.get('port') or 5432}")
                                  .replace("/deis", f"/{db.name}"))
        textfile = tmp_path / "textfile"
        textfile.mkdir()
        argv = [a.replace("/textfile/", f"{textfile}/") for a in audit_argv(cronjob())]
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8",
               **pod_environment(cronjob(), secret)}
        done = subprocess.run([str(Path(sys.executable).with_name(argv[0])), *argv[1:]], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr  # --fail-on never: findings are not a failed Job
        assert done.stdout == "" and messages(done.stderr) == ""
        written = textfile / "controller_audit.prom"
        assert stat.S_IMODE(written.stat().st_mode) == 0o644  # readable by the exporter's user
        text = written.read_text()
        assert password not in text and f"{role}@" not in text  # no user, no password in any label
        samples = parse_prometheus(text, keep_database=True)
        labels = f'database="{server["host"]}:{server.get("port") or 5432}/{db.name}",cluster="production"'
        assert samples[f"controller_audit_up{{{labels}}}"] == 1
        critical = [v for k, v in samples.items()
                    if k.startswith("controller_audit_findings{") and 'severity="critical"' in k]
        assert sum(critical) == 1  # the story's damage (search: the next deploy fails), read by a role that may only SELECT
    finally:
        db.conn.execute(f"DROP OWNED BY {role}")
        db.conn.execute(f"DROP ROLE {role}")


# --- the Dockerfile -----------------------------------------------------------------------------

class Stage:
    """One ``FROM`` stage of the Dockerfile: its instructions as (keyword, arguments)."""

    def __init__(self, base: str, name: str | None) -> None:
        self.base, self.name = base, name
        self.instructions: list[tuple[str, str]] = []

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    @property
    def entrypoint(self) -> list[str]:
        (raw,) = self.all("ENTRYPOINT")
        return json.loads(raw)  # exec form: no shell in between

    @property
    def uid(self) -> int:
        (user,) = self.all("USER")
        return int(user.split(":")[0])


def dockerfile_stages() -> list[Stage]:
    """The Dockerfile's stages (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in (ROOT / "Dockerfile").read_text().splitlines()
                                         if not line.lstrip().startswith("#")))
    stages: list[Stage] = []
    for line in filter(None, (raw.strip() for raw in text.splitlines())):
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), " ".join(args.split())
        if keyword == "FROM":
            parts = args.split()
            stages.append(Stage(parts[0], parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None))
        elif stages:
            stages[-1].instructions.append((keyword, args))
    return stages


BUILD_TOOLS = ("build", "setuptools", "wheel", "gcc", "build-essential", "git", "make")


def test_the_dockerfile_builds_a_wheel_and_installs_it_as_a_fixed_non_root_user():
    build_stage, final = dockerfile_stages()
    assert build_stage.name and final.name is None
    assert "python -m build --wheel --outdir /wheels ." in build_stage.all("RUN")
    assert final.base == build_stage.base == "${PYTHON_IMAGE}"
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.\d+-slim$", (ROOT / "Dockerfile").read_text(), re.M)
    assert final.all("COPY") == [f"--from={build_stage.name} /wheels/ /wheels/"]  # only the wheel crosses over
    (install,) = [r for r in final.all("RUN") if "pip install" in r]
    assert re.search(r"python -m pip install .*/wheels/controller_audit-\*\.whl", install)
    final_words = set(re.findall(r"[\w.-]+", " ".join(final.all("RUN"))))
    assert not final_words & {"apt-get", "gcc", "build-essential"}
    assert not [w for w in shlex.split(install.split("&&")[0])[4:] if w in BUILD_TOOLS]
    assert final.all("USER") == ["10001:10001"] and final.uid != 0
    (adduser,) = [r for r in final.all("RUN") if "useradd" in r]
    assert "--uid 10001" in adduser and "--gid 10001" in adduser and "--no-create-home" in adduser
    assert final.entrypoint == [SCRIPT]


def test_dockerignore_lets_in_exactly_what_the_build_stage_copies():
    build_stage = dockerfile_stages()[0]
    sources = {s.rstrip("/") for args in build_stage.all("COPY") for s in args.split()[:-1]}
    lines = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "*"
    assert {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")} == sources
    for source in sources:
        assert (ROOT / source).exists(), source


def _container_command(command: str, paths: dict[str, Path], python: Path) -> str:
    """A RUN command with the container's paths mapped to ``paths`` and ``python`` to a venv's."""
    for inside, outside in paths.items():
        command = re.sub(rf"(?<![\w/]){re.escape(inside)}(?=/|\s|$)", str(outside), command)
    return re.sub(r"(^|&&\s*)python(?=\s)", lambda m: m.group(1) + shlex.quote(str(python)), command)


@pytest.mark.package
def test_the_dockerfiles_steps_build_and_install_a_working_cli(tmp_path):
    """Each stage's RUN steps that concern Python, in a fresh venv standing for the image's
    Python: the wheel built from exactly what the build stage copies, installed from it alone.
    Marked ``package``: it runs with tests/test_package.py (whose runner it uses), which checks
    the same wheel in depth."""
    build_stage, final = dockerfile_stages()
    context = tmp_path / "src"
    context.mkdir()
    for args in build_stage.all("COPY"):
        *sources, _ = args.split()
        for source in sources:
            origin = ROOT / source.rstrip("/")
            if origin.is_dir():
                shutil.copytree(origin, context / source.rstrip("/"),
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(origin, context / source)
    paths = {"/wheels": tmp_path / "wheels"}
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PG", "DATABASE_URL", "DEIS_"))}

    def run_stage(stage: Stage, home: Path, cwd: Path) -> Path:
        venv.create(home, with_pip=True)
        for command in stage.all("RUN"):
            if not command.startswith("python "):
                continue  # groupadd / useradd: the image's user, not Python's business
            done = subprocess.run(_container_command(command, paths, home / "bin" / "python"), shell=True,
                                  cwd=cwd, env=clean_env, capture_output=True, text=True, timeout=900, check=False)
            assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        return home / "bin"

    run_stage(build_stage, tmp_path / "build-venv", context)
    assert [p.name for p in (tmp_path / "wheels").iterdir()] == [f"controller_audit-{auditor.__version__}-py3-none-any.whl"]
    shutil.copytree(tmp_path / "wheels", tmp_path / "wheels-kept")
    bindir = run_stage(final, tmp_path / "image-venv", tmp_path)
    assert not (tmp_path / "wheels").exists()  # the install step removed them, as in the image
    freeze = subprocess.run([str(bindir / "python"), "-m", "pip", "freeze"], capture_output=True, text=True,
                            env=clean_env, check=True).stdout.lower()
    assert not [t for t in BUILD_TOOLS if re.search(rf"^{t}==", freeze, re.M)]  # no build tools came along
    assert (bindir / final.entrypoint[0]).exists()
    version = _run(bindir, "--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip().endswith(auditor.__version__), version.stderr
    listing = _run(bindir, "checks", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert {"orphan-config", "shared-build", "invalid-json"} <= set(re.findall(r"^([a-z][a-z-]+)\s", listing.stdout,
                                                                                re.M))
    where = subprocess.run([str(bindir / "python"), "-c", "import auditor; print(auditor.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env=clean_env, check=True).stdout
    assert Path(where.strip()).is_relative_to(tmp_path / "image-venv")  # the wheel's copy, not this checkout

