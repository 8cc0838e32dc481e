"""Configuration: defaults without a file, TOML, environment overrides, clear errors."""

from pathlib import Path

import pytest

from screening_node.config import Destination, load_settings
from screening_node.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "node.example.toml"


def test_defaults_need_no_file():
    s = load_settings(None, environ={})
    assert s.node.port == 11112 and s.intake.stable_age_s == 30.0
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("screening-node.sqlite3")


def test_example_file_is_valid_and_complete():
    s = load_settings(EXAMPLE, environ={})
    assert s == load_settings(None, environ={}), "the example file must show the embedded defaults"


def test_environment_overrides_file(tmp_path):
    f = tmp_path / "n.toml"
    f.write_text('[intake]\nstable_age_s = 12\n[node]\nport = 104\n')
    s = load_settings(f, environ={"SCREENING_NODE_INTAKE_STABLE_AGE_S": "3.5"})
    assert s.intake.stable_age_s == 3.5 and s.node.port == 104


def test_destinations_from_file_env_and_cli(tmp_path):
    f = tmp_path / "n.toml"
    f.write_text('[delivery]\ndestinations = [{ae_title = "PACS", host = "10.0.0.1", port = 104}, "B@h:11"]\n')
    s = load_settings(f, environ={})
    assert s.delivery.destinations == (Destination("PACS", "10.0.0.1", 104), Destination("B", "h", 11))
    s = load_settings(None, {"delivery.destinations": ["ORTHANC@127.0.0.1:4242"]}, environ={})
    assert str(s.delivery.destinations[0]) == "ORTHANC@127.0.0.1:4242"
    s = load_settings(None, environ={"SCREENING_NODE_DELIVERY_DESTINATIONS": "A@x:1,B@y:2"})
    assert [d.ae_title for d in s.delivery.destinations] == ["A", "B"]


@pytest.mark.parametrize("text, key", [
    ('[node]\nport = 70000\n', "node.port"),
    ('[node]\nport = "abc"\n', "node.port"),
    ('[node]\nae_title = "WAY_TOO_LONG_AE_TITLE"\n', "node.ae_title"),
    ('[intake]\nstable_age_s = -1\n', "intake.stable_age_s"),
    ('[analysis]\nengine = "magic"\n', "analysis.engine"),
    ('[node]\nprot = 1\n', "prot"),
    ('[nodes]\n', "nodes"),
    ('[delivery]\ndestinations = ["nonsense"]\n', "destination"),
])
def test_invalid_values_name_the_key(tmp_path, text, key):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=key):
        load_settings(f, environ={})


def test_invalid_environment_value_names_the_key():
    with pytest.raises(ConfigError, match="node.port"):
        load_settings(None, environ={"SCREENING_NODE_NODE_PORT": "eleven"})


def test_serve_refuses_to_start_with_an_invalid_value(tmp_path):
    from tests.node_process import cli

    result = cli("serve", "--data-dir", str(tmp_path), "--port", "70000", check=False)
    assert result.returncode == 2 and "node.port" in result.stderr and "65535" in result.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[intake]\nstable_age_s = "soon"\n')
    result = cli("status", "--config", str(bad), "--data-dir", str(tmp_path), check=False)
    assert result.returncode == 2 and "intake.stable_age_s" in result.stderr
