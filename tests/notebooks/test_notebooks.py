"""Every notebook in notebooks/ executes in its small configuration (KERAS_LONGTAIL_NOTEBOOK_SMALL=1)."""

import os
import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
@pytest.mark.slow  # executes each notebook in a kernel
def test_notebook_executes(path, monkeypatch):
    # The kernel is a child process: it inherits these.
    monkeypatch.setenv("KERAS_LONGTAIL_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    notebook = nbformat.read(path, as_version=4)
    text = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert "KERAS_LONGTAIL_NOTEBOOK_SMALL" in text, f"{path.name} has no small configuration"
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError with the failing cell


def _committed_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") + output.get("data", {}).get("text/plain", ""))
    return "\n".join(texts)


def test_readme_numbers_are_in_the_committed_outputs():
    # A number the notebooks' README states about a notebook must come from that notebook's committed run.
    import re

    rows = [line for line in (ROOT / "notebooks" / "README.md").read_text().splitlines()
            if line.startswith("| `") and ".ipynb`" in line]
    assert len(rows) == len(NOTEBOOKS)
    for row in rows:
        name = re.search(r"`(\w+)\.ipynb`", row).group(1)
        reproduces = row.split("|")[2]
        outputs = _committed_outputs(ROOT / "notebooks" / f"{name}.ipynb")
        stated = re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", reproduces)
        missing = [number for number in stated if number not in outputs]
        assert not missing, f"notebooks/README.md states {missing} for {name}.ipynb, absent from its outputs"


def test_notebook_text_states_no_measured_number():
    # Markdown cells may name settings (e.g. a threshold) but no accuracy: those are printed by the code cells.
    import re

    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        text = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
        claims = re.findall(r"\d+(?:\.\d+)?\s*(?:%|vs)", text)
        assert not claims, f"{path.name}'s text states measured numbers {claims}: print them from the run instead"
