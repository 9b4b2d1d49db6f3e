"""The compose stack, validated without Docker (which cannot run here or in CI).

docker-compose.yml is parsed as YAML (anchors and merge keys resolved), and each service's
command is resolved against the installed code: ``gunicorn config.wsgi`` imports a WSGI
application and every gunicorn flag exists; ``celery --app=workers.celery:app worker|beat``
names the real Celery app and flags the installed Celery knows; ``manage.py`` commands exist.
Exactly one beat; health checks and restart policies; volumes; every variable the file names
is one the code reads, and .env.example documents every variable the code reads.
"""

from __future__ import annotations

import importlib
import re
import shlex
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import pytest
import yaml

from tests.support.live_processes import ROOT, VENV_BIN, base_env

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict = COMPOSE["services"]
APP_SERVICES = {"migrate", "web", "worker", "beat"}
DATA_SERVICES = {"redis", "mongo", "postgres"}
LONG_RUNNING = set(SERVICES) - {"migrate"}
ENV_EXAMPLE = ROOT / ".env.example"
INTERPOLATION = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::?[-?][^}]*)?\}")
# Variables compose itself consumes (interpolation) rather than the app.
COMPOSE_ONLY = {
    "POSTGRES_PASSWORD",
    "MONGO_PASSWORD",
    "WEB_CONCURRENCY",
    "WORKER_CONCURRENCY",
    "WEB_PORT",
    "FORWARDED_ALLOW_IPS",
}
TEST_ONLY = {"TEST_DATABASE_NAME"}


def command_of(service: str) -> list[str]:
    command = SERVICES[service].get("command") or []
    return command if isinstance(command, list) else shlex.split(command)


def expand_defaults(text: str) -> str:
    """``${NAME:-default}`` -> default (what compose runs with an empty .env)."""
    return re.sub(r"\$\{[A-Z_][A-Z0-9_]*:-([^}]*)\}", r"\1", text)


def flags_of(args: list[str]) -> list[str]:
    return [arg.split("=", 1)[0] for arg in args if arg.startswith("--")]


@cache
def help_text(*args: str) -> str:
    result = subprocess.run(
        [str(VENV_BIN / args[0]), *args[1:], "--help"],
        cwd=ROOT,
        env=base_env(DATA_DIR=tempfile.mkdtemp(prefix="deployment-help-")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def code_variables() -> set[str]:
    """Every environment variable the project's code reads (settings, policies, schedule,
    Celery, the Mongo source)."""
    readers = re.compile(
        r"(?:os\.environ\.get|os\.getenv|os\.environ\[|env_int|env_bool|_raw|_duration|_int|read)"
        r"\(\s*\"([A-Z][A-Z0-9_]{2,})\""
    )
    names: set[str] = set()
    for package in ("config", "sessions_api", "workers", "dashboard"):
        for source in (ROOT / package).rglob("*.py"):
            if "migrations" in source.parts:
                continue
            text = source.read_text()
            names |= set(readers.findall(text))
            for prefix in re.findall(r"_tiered\(\s*\"([A-Z][A-Z0-9_]+)\"", text):
                names |= {f"{prefix}_DEFAULT", f"{prefix}_BY_FORMAT", f"{prefix}_BY_AGENT"}
    from workers.registry import JOB_NAMES

    names |= {f"JOB_SCHEDULE_{job.upper()}" for job in JOB_NAMES}
    return names


def example_variables() -> dict[str, str | None]:
    """{name: value} of .env.example; None for a commented (documented default) line."""
    found: dict[str, str | None] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"(#\s?)?([A-Z][A-Z0-9_]+)=(.*)", line.strip())
        if match:
            commented, name, value = match.groups()
            if commented is None or name not in found:
                found[name] = None if commented else value
    return found


# --- services and their commands ---------------------------------------------------------------


def test_the_stack_has_every_service_of_the_design():
    """Production runs web (gunicorn), worker, beat, Redis, MongoDB and PostgreSQL."""
    assert {"web", "worker", "beat", "redis", "mongo", "postgres"} <= set(SERVICES)
    assert SERVICES["redis"]["image"].startswith("redis:")
    assert SERVICES["mongo"]["image"].startswith("mongo:")
    assert SERVICES["postgres"]["image"].startswith("postgres:")
    for name in APP_SERVICES:
        assert SERVICES[name]["build"] == "."


def test_web_runs_gunicorn_on_the_real_wsgi_app_with_known_flags():
    command = command_of("web")
    assert command[:2] == ["gunicorn", "config.wsgi"]
    module = importlib.import_module("config.wsgi")
    assert callable(module.application)
    known = help_text("gunicorn")
    for flag in flags_of(command):
        assert f"{flag} " in known or f"{flag}\n" in known or f"{flag}," in known, flag
    args = dict(arg.split("=", 1) for arg in command if arg.startswith("--") and "=" in arg)
    assert args["--bind"] == "0.0.0.0:8000"
    assert int(expand_defaults(args["--workers"])) >= 2
    assert 10 <= int(args["--timeout"]) <= 120
    assert int(args["--graceful-timeout"]) < _seconds(SERVICES["web"]["stop_grace_period"])


def test_the_image_default_command_is_the_same_server():
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*?\])\s*$", dockerfile, re.M | re.S)
    assert cmd, "no exec-form CMD"
    args = yaml.safe_load(cmd.group(1).replace("\\\n", " "))
    assert args[:2] == ["gunicorn", "config.wsgi"]
    known = help_text("gunicorn")
    for flag in flags_of(args):
        assert flag in known, flag
    assert re.search(r"^USER app$", dockerfile, re.M), "the image must not run as root"
    assert "collectstatic" in dockerfile
    assert "EXPOSE 8000" in dockerfile


@pytest.mark.parametrize("service", ["worker", "beat"])
def test_worker_and_beat_run_the_real_celery_app_with_known_flags(service):
    command = command_of(service)
    assert command[0] == "celery"
    assert "--app=workers.celery:app" in command
    subcommand = "worker" if service == "worker" else "beat"
    assert subcommand in command
    from celery import Celery

    from workers.celery import app

    assert isinstance(app, Celery)
    known = help_text("celery", "--app=workers.celery:app", subcommand)
    after = command[command.index(subcommand) + 1 :]
    for flag in flags_of(after):
        assert flag in known, f"celery {subcommand} does not know {flag}"


def test_exactly_one_beat_and_no_embedded_beat_in_workers():
    beats = [name for name in SERVICES if "beat" in command_of(name)[:4]]
    assert beats == ["beat"]
    assert SERVICES["beat"].get("deploy", {}).get("replicas", 1) == 1
    assert "scale" not in SERVICES["beat"]
    worker = command_of("worker")
    assert "-B" not in worker and "--beat" not in worker
    # Beat's schedule survives restarts on its own volume.
    schedule = next(a for a in command_of("beat") if a.startswith("--schedule="))
    mount = SERVICES["beat"]["volumes"][0].split(":")[1]
    assert schedule.split("=", 1)[1].startswith(mount)


def test_migrate_runs_existing_management_commands_before_the_app_starts():
    from django.core.management import get_commands

    command = command_of("migrate")
    assert command[:2] == ["sh", "-c"]
    steps = [shlex.split(step) for step in command[2].split("&&")]
    commands = get_commands()
    for step in steps:
        assert step[:2] == ["python", "manage.py"], step
        assert step[2] in commands, f"manage.py {step[2]} does not exist"
    assert [s[2] for s in steps] == ["migrate", "ensure_roles"]
    for name in ("web", "worker", "beat"):
        condition = SERVICES[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully"
    assert SERVICES["migrate"]["restart"] == "no"


def test_health_checks_restart_policies_and_dependency_order():
    for name in LONG_RUNNING:
        service = SERVICES[name]
        assert service["restart"] in {"unless-stopped", "always"}, name
        check = service.get("healthcheck")
        assert check and check["test"], f"{name} has no health check"
        for key in ("interval", "timeout", "retries"):
            assert key in check, (name, key)
    for name in ("web", "worker", "beat", "migrate"):
        for data in DATA_SERVICES:
            assert SERVICES[name]["depends_on"][data]["condition"] == "service_healthy"


def test_health_check_commands_are_real():
    web = SERVICES["web"]["healthcheck"]["test"]
    assert web[:3] == ["CMD", "python", "-c"]
    compile(web[3], "web-healthcheck", "exec")
    assert "/healthz" in web[3]
    known = help_text("celery", "--app=workers.celery:app", "inspect", "ping")
    for name in ("worker", "beat"):
        kind, shell = SERVICES[name]["healthcheck"]["test"]
        assert kind == "CMD-SHELL"
        ping = shlex.split(shell.split("|")[0].replace("$$", "$"))
        assert ping[:4] == ["celery", "--app=workers.celery:app", "inspect", "ping"]
        for flag in flags_of(ping[4:]):
            assert flag in known, flag
        destination = next(a for a in ping if a.startswith("--destination="))
        hostname = next(a for a in command_of(name) if a.startswith("--hostname="))
        # The node the check pings is the node the service names itself.
        assert destination.split("=", 1)[1].split("@")[0] == hostname.split("=", 1)[1].split("@")[0]


def test_data_lives_on_named_volumes():
    declared = set(COMPOSE["volumes"])
    used = set()
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source, _target = volume.split(":")[:2]
            assert source in declared, f"{name} mounts an undeclared volume {source}"
            used.add(source)
    assert used == declared
    mounts = {name: [v.split(":")[1] for v in SERVICES[name]["volumes"]] for name in DATA_SERVICES}
    assert "/var/lib/postgresql/data" in mounts["postgres"]
    assert "/data/db" in mounts["mongo"]
    assert "/data" in mounts["redis"]
    assert "--appendonly" in SERVICES["redis"]["command"]
    assert "noeviction" in SERVICES["redis"]["command"]


def test_only_web_publishes_a_port():
    assert [name for name, s in SERVICES.items() if s.get("ports")] == ["web"]


def test_app_containers_run_unprivileged():
    for name in APP_SERVICES:
        assert "ALL" in SERVICES[name]["cap_drop"]
        assert "no-new-privileges:true" in SERVICES[name]["security_opt"]


# --- variables and secrets ---------------------------------------------------------------------


def test_every_app_variable_in_compose_is_read_by_the_code():
    code = code_variables()
    for name in APP_SERVICES:
        for variable in SERVICES[name]["environment"]:
            assert variable in code, f"{name} sets {variable}, which nothing reads"


def test_every_interpolated_variable_is_documented_in_env_example():
    text = (ROOT / "docker-compose.yml").read_text()
    interpolated = set(INTERPOLATION.findall(text))
    documented = set(example_variables())
    assert interpolated <= documented, interpolated - documented
    assert interpolated - code_variables() <= COMPOSE_ONLY


def test_env_example_documents_every_variable_the_code_reads():
    missing = code_variables() - set(example_variables()) - TEST_ONLY
    assert not missing, f"document these in .env.example: {sorted(missing)}"


def test_env_example_holds_no_secret_and_the_stack_requires_them():
    values = example_variables()
    secretish = re.compile(r"SECRET|PASSWORD|TOKEN")
    for name, value in values.items():
        if secretish.search(name) and value is not None:
            assert value == "", f"{name} has a value in .env.example"
    text = (ROOT / "docker-compose.yml").read_text()
    for name in ("DJANGO_SECRET_KEY", "POSTGRES_PASSWORD", "MONGO_PASSWORD"):
        assert values.get(name) == ""
        # ${NAME:?message}: compose refuses to start while it is unset or empty.
        assert re.search(r"\$\{" + name + r":\?", text), name
        assert not re.search(name + r": \"?[^\"$]", text), f"{name} has a literal value"


def test_compose_sets_production_mode():
    environment = SERVICES["web"]["environment"]
    assert environment["DJANGO_DEBUG"] == "0"
    assert environment["SESSION_STORE"] == "mongo"
    assert environment["DATABASE_URL"].startswith("postgresql://")
    assert environment["REDIS_URL"].startswith("redis://redis:")


def test_dockerignore_keeps_secrets_and_local_data_out_of_the_image():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".env.*", ".git", ".venv", "var"} <= ignored


def _seconds(value: str) -> int:
    match = re.fullmatch(r"(\d+)(s|m)", value)
    assert match, value
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


def test_the_compose_file_has_no_tabs_and_parses_the_same_twice():
    text = (ROOT / "docker-compose.yml").read_text()
    assert "\t" not in text
    assert yaml.safe_load(text) == COMPOSE
    assert Path(ROOT / ".env.example").exists()
