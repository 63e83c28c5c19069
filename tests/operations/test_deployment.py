"""The Dockerfile and compose file: every file they copy exists, and they run the real command.

No container engine runs on the machines the suite runs on, so the images are not built here.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"


def instructions(name: str) -> list[str]:
    """The arguments of every ``name`` instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    return [
        line.split(None, 1)[1]
        for line in text.splitlines()
        if line.split(None, 1)[:1] == [name] and not line.startswith("#")
    ]


def test_every_file_the_dockerfile_copies_exists() -> None:
    copied = [spec for spec in instructions("COPY") if not spec.startswith("--from")]
    assert copied
    for spec in copied:
        *sources, _target = spec.split()
        for source in sources:
            assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is not there"


def test_the_entry_point_is_the_installed_command() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert instructions("ENTRYPOINT") == [f'["{next(iter(scripts))}"]']
    assert instructions("CMD") == ['["serve"]']


def test_the_image_runs_unprivileged_with_a_health_check_and_a_volume() -> None:
    assert len(instructions("FROM")) == 2, "a build stage and a run stage"
    assert instructions("USER") == ["caliper"]
    assert instructions("VOLUME") == ['["/data"]']
    (health,) = instructions("HEALTHCHECK")
    assert "/healthz" in health
    environment = " ".join(instructions("ENV"))
    assert "CALIPER_STORE_DATABASE_URL=sqlite:////data/caliper.db" in environment


def test_compose_runs_the_store_over_postgresql_with_known_settings() -> None:
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    store = compose["services"]["store"]
    assert store["build"] == "."
    assert store["command"][0] == "serve"
    assert store["environment"]["CALIPER_STORE_DATABASE_URL"].startswith("postgresql://")
    assert store["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert compose["services"]["postgres"]["image"] == "postgres:15"
    # Every CALIPER_STORE_ variable names a setting that exists.
    from caliper_store.config import ENV_PREFIX, SETTING_FIELDS

    for name in store["environment"]:
        assert name.startswith(ENV_PREFIX)
        assert name[len(ENV_PREFIX) :].lower() in SETTING_FIELDS
