"""Both inspection notebooks run top to bottom in a real Jupyter kernel against a small lab.

The kernel is this very interpreter: a kernelspec written to a temporary folder on
``$JUPYTER_PATH`` points at ``sys.executable``, so the test never depends on (nor installs) a
kernelspec of the environment. Parameters are injected by rewriting the cell tagged
``parameters`` (the papermill convention).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from alphaloop.home import LabHome
from evolution.engine import EvolutionConfig
from evolution.refine import RefineConfig
from evolution.session import EvolutionSession, SessionConfig
from evolution.store import GenePoolStore
from simulators.data_spec import load_market

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
KERNEL = "alphaloop-test-kernel"
DATA = "synthetic:seed=5,assets=4,start=2021-01-01,end=2023-12-29"


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Put a kernelspec of this interpreter on ``$JUPYTER_PATH``; yield the kernel's env."""
    jupyter = tmp_path_factory.mktemp("jupyter")
    spec = jupyter / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "AlphaLoop test kernel",
                "language": "python",
            }
        )
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(jupyter))
        env = dict(os.environ)
        # The inline backend (the kernel's default) is what turns figures into image/png.
        env.pop("MPLBACKEND", None)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        yield env


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> tuple[LabHome, list[str]]:
    """A lab home with two tracked sessions of two generations each; session ids, oldest first."""
    home = LabHome(tmp_path_factory.mktemp("notebook-home"))
    panel = load_market(DATA, home=home)
    ids = []
    for seed in (1, 2):
        session = EvolutionSession(
            home=home,
            panel=panel,
            data_spec=DATA,
            as_of="2023-12-29",
            seed=seed,
            config=SessionConfig(
                evolution=EvolutionConfig(population=12, immigrants=2),
                refine=RefineConfig(top=1, trials=2),
            ),
            workers=0,
            track=True,
        )
        try:
            ids.append(str(session.run(2)["session_id"]))
        finally:
            session.close()
    return home, ids


def _run(name: str, parameters: dict[str, Any], env: dict[str, str]) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: exactly one cell must be tagged 'parameters'"
    tagged[0].source = "\n".join(f"{key} = {value!r}" for key, value in parameters.items())
    client = NotebookClient(
        notebook,
        kernel_name=KERNEL,
        timeout=300,
        resources={"metadata": {"path": str(ROOT)}},
    )
    client.execute(env=env)
    return notebook


def _outputs(notebook: nbformat.NotebookNode) -> list[Any]:
    return [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def _text(notebook: nbformat.NotebookNode) -> str:
    parts = []
    for output in _outputs(notebook):
        parts.append(output.get("text", ""))
        data = output.get("data", {})
        parts.append(data.get("text/plain", ""))
        parts.append(data.get("text/html", ""))
    return "\n".join(parts)


def _images(notebook: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for o in _outputs(notebook))


@pytest.mark.parametrize("name", ["strategy_inspection", "generation_comparison"])
def test_committed_notebook_has_no_outputs_and_one_parameters_cell(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "home = None" in tagged[0].source


def test_strategy_inspection_runs_and_shows_the_best_alive_genome(lab, kernel_env) -> None:
    home, _ids = lab
    with GenePoolStore(home.gene_pool_db) as store:
        champions = store.list_genomes("champion")
        pool = champions or store.list_genomes("alive")
        expected = min(pool, key=lambda g: (-g["last_score"], g["genome_id"]))["genome_id"]
        lineage = store.lineage(expected)
    notebook = _run(
        "strategy_inspection",
        {"home": str(home.root), "genome_id": None, "data_spec": None},
        kernel_env,
    )
    outputs = _outputs(notebook)
    assert not [o for o in outputs if o.output_type == "error"]
    text = _text(notebook)
    assert f"genome: {expected} " in text
    # equity, trades, lineage, vectorbt: four charts
    assert _images(notebook) >= 4
    assert f"{len(lineage)} genomes in the lineage" in text
    assert "final value" in text and "vectorbt" in text
    assert "passed" in text or "held back" in text


def test_generation_comparison_runs_and_compares_the_two_latest_sessions(lab, kernel_env) -> None:
    home, ids = lab
    notebook = _run("generation_comparison", {"home": str(home.root), "sessions": None}, kernel_env)
    assert not [o for o in _outputs(notebook) if o.output_type == "error"]
    assert _images(notebook) >= 2
    last = notebook.cells[-1].outputs
    table = "".join(o.get("data", {}).get("text/html", "") for o in last)
    for session_id in ids:
        assert session_id[:8] in table, "the final comparison table must show both sessions"


def test_generation_comparison_empty_lab_fails_loudly(tmp_path: Path, kernel_env) -> None:
    empty = LabHome(tmp_path / "empty").ensure()
    with pytest.raises(CellExecutionError, match="InspectionError"):
        _run("generation_comparison", {"home": str(empty.root), "sessions": None}, kernel_env)
