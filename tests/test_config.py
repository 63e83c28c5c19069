"""Settings precedence (flags > environment > file > defaults) and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from caliper_store.config import SETTING_FIELDS, Settings, load_settings, redact_url
from caliper_store.errors import ConfigurationError


def test_precedence_is_flags_then_environment_then_file_then_default(tmp_path: Path) -> None:
    path = tmp_path / "caliper.toml"
    path.write_text('port = 7000\nmax_body_bytes = 1000\nhost = "0.0.0.0"\n')
    environ = {"CALIPER_STORE_PORT": "7100", "CALIPER_STORE_MAX_BODY_BYTES": "2000"}
    settings = load_settings({"port": 7200}, environ, path)
    assert settings.port == 7200
    assert settings.max_body_bytes == 2000
    assert settings.host == "0.0.0.0"
    assert settings.max_items_per_envelope == Settings().max_items_per_envelope


def test_short_database_variable_is_read() -> None:
    settings = load_settings({}, {"CALIPER_STORE_DATABASE": "sqlite:///x.db"})
    assert settings.database_url == "sqlite:///x.db"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"CALIPER_STORE_PORT": "eighty"}, "port"),
        ({"CALIPER_STORE_MAX_BODY_BYTES": "-1"}, "max_body_bytes"),
        ({"CALIPER_STORE_DATABASE_URL": "mysql://x"}, "database_url"),
        ({"CALIPER_STORE_SQLITE_SYNCHRONOUS": "SOMETIMES"}, "sqlite_synchronous"),
        ({"CALIPER_STORE_WRITER_PROCESS": "fork"}, "writer_process"),
    ],
)
def test_bad_values_fail_naming_the_setting(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings({}, environ)
    assert raised.value.field == named
    assert named in raised.value.detail


def test_unknown_key_in_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "caliper.toml"
    path.write_text("max_bodybytes = 1\n")
    with pytest.raises(ConfigurationError, match="max_bodybytes"):
        load_settings({}, {}, path)


def test_every_setting_has_help() -> None:
    assert all(field.metadata.get("help") for field in SETTING_FIELDS.values())


def test_passwords_are_redacted() -> None:
    assert redact_url("postgresql://app:s3cret@db/caliper") == "postgresql://app:***@db/caliper"
    assert "s3cret" not in str(Settings(database_url="postgresql://app:s3cret@db/x").redacted())
