"""caliper-store config show: each setting's value, where it came from, secrets masked."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fixtures.server import run_cli


def test_config_show_names_the_source_of_each_setting_and_masks_secrets(tmp_path: Path) -> None:
    settings_file = tmp_path / "store.toml"
    settings_file.write_text('workers = 3\nlog_format = "text"\nsession_secret = "s3cret-file"\n')
    shown = run_cli(
        "--config",
        str(settings_file),
        "config",
        "show",
        "--json",
        "--port",
        "9001",
        env={
            "CALIPER_STORE_LOG_FORMAT": "json",
            "CALIPER_STORE_DATABASE": "postgresql://store:hunter2@db/caliper",
            "CALIPER_STORE_PSEUDONYM_KEY": "pseudonym-secret-0123456789",
        },
    )
    assert shown.returncode == 0, shown.stderr
    settings = json.loads(shown.stdout)
    assert settings["port"] == {"value": 9001, "source": "flag"}
    assert settings["workers"] == {"value": 3, "source": f"file {settings_file}"}
    assert settings["log_format"] == {
        "value": "json",
        "source": "environment CALIPER_STORE_LOG_FORMAT",
    }
    assert settings["host"] == {"value": "127.0.0.1", "source": "default"}
    assert settings["database_url"]["value"] == "postgresql://store:***@db/caliper"
    assert settings["session_secret"]["value"] == "***"
    assert settings["pseudonym_key"]["value"] == "***"
    for secret in ("hunter2", "s3cret-file", "pseudonym-secret"):
        assert secret not in shown.stdout


def test_config_show_refuses_a_bad_value_naming_the_setting() -> None:
    shown = run_cli("config", "show", env={"CALIPER_STORE_LOG_FORMAT": "xml"})
    assert shown.returncode == 1
    assert "log_format" in shown.stderr
