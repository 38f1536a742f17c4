"""``ray_cluster.yaml`` passes Ray's own cluster-config validation."""

from __future__ import annotations

import copy
import re
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


GUIDE = CLUSTER_FILE.parent / "docs" / "cluster.md"


def _joined(config: dict, key: str) -> str:
    return "\n".join(config.get(key) or [])


def _port(pattern: str, text: str) -> int:
    found = re.findall(pattern, text)
    assert len(set(found)) == 1, (pattern, found)
    return int(found[0])


def test_ray_cluster_file_head_runs_lab_home_and_mlflow_server_workers_scale() -> None:
    config = _load()
    types = config["available_node_types"]
    head = config["head_node_type"]
    workers = [name for name in types if name != head]
    assert workers and all(types[name]["max_workers"] > 0 for name in workers)
    assert types[head]["max_workers"] == 0  # the head holds the state, it is not scaled
    setup = _joined(config, "setup_commands")
    assert "pip install" in setup and "alphaloop" in setup
    assert "ALPHALOOP_HOME=" in setup
    head_setup = _joined(config, "head_setup_commands")
    assert "mlflow server" in head_setup
    server_port = _port(r"mlflow server[^\n]*?--port[ =](\d+)", head_setup.replace("\n", " "))
    uri_port = _port(r"ALPHALOOP_MLFLOW_URI=http://[\w.]+:(\d+)", head_setup)
    assert uri_port == server_port  # the drivers log to the server the head starts


def test_cluster_guide_lists_the_ports_of_the_cluster_file() -> None:
    config = _load()
    head_start = _joined(config, "head_start_ray_commands").replace("\n", " ")
    head_setup = _joined(config, "head_setup_commands").replace("\n", " ")
    ports = {
        "GCS": _port(r"--head --port=(\d+)", head_start),
        "dashboard": _port(r"--dashboard-port=(\d+)", head_start),
        "MLflow": _port(r"mlflow server[^\n]*?--port[ =](\d+)", head_setup),
        "object manager": _port(r"--object-manager-port=(\d+)", head_start),
    }
    worker_start = _joined(config, "worker_start_ray_commands")
    assert f":{ports['GCS']}" in worker_start  # workers join the head's GCS port
    guide = GUIDE.read_text(encoding="utf-8")
    for name, port in ports.items():
        assert re.search(rf"^\| {port} \|", guide, re.MULTILINE), f"{name} port {port} not in guide"
    assert "ray up ray_cluster.yaml" in guide and "ray job submit" in guide
