"""``ray_cluster.yaml`` passes Ray's own cluster-config validation."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER_FILE = Path(__file__).resolve().parents[2] / "ray_cluster.yaml"


def _load() -> dict:
    return yaml.safe_load(CLUSTER_FILE.read_text(encoding="utf-8"))


def test_ray_cluster_file_is_valid_for_ray() -> None:
    config = prepare_config(_load())
    validate_config(config)
    assert config["head_node_type"] in config["available_node_types"]
    assert any("alphaloop" in command for command in config["setup_commands"])


def test_ray_cluster_validation_rejects_a_broken_copy() -> None:
    broken = copy.deepcopy(_load())
    broken["head_node_type"] = "missing-type"
    with pytest.raises(ValueError, match="head_node_type"):
        validate_config(prepare_config(broken))
