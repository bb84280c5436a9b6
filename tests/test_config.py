"""Model configuration errors (seem_core.config)."""
from __future__ import annotations

import pytest
import yaml

from conftest import GOLDEN_DIR, require_path
from seem_core.config import ConfigError, load_config


def test_official_yaml_missing_a_nested_key_names_the_file_and_the_key(tmp_path):
    source = require_path(GOLDEN_DIR / "tiny_focaldw_demo" / "config.yaml", "golden official config")
    official = yaml.safe_load(source.read_text())
    del official["MODEL"]["BACKBONE"]["FOCAL"]["EMBED_DIM"]
    path = tmp_path / "official.yaml"
    path.write_text(yaml.safe_dump(official))
    with pytest.raises(ConfigError, match=r"official\.yaml: not an official SEEM config: missing key 'EMBED_DIM'"):
        load_config(path)


def test_official_yaml_without_a_section_is_rejected(tmp_path):
    path = tmp_path / "partial.yaml"
    path.write_text(yaml.safe_dump({"MODEL": {"BACKBONE": {"NAME": "focal"}}}))
    with pytest.raises(ConfigError, match=r"partial\.yaml: not an official SEEM config: missing key 'TEXT'"):
        load_config(path)
