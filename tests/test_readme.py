"""The README's promises: its commands are where `.ci/run` reads them, and its Python blocks run as written.

Every ```python block of README.md runs top to bottom in one fresh interpreter (the package imported from
this checkout), except blocks whose first line is a `# requires: ...` comment (hardware or data absent
here), which are only compiled.
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
README = REPO / "README.md"
MAX_README_LINES = 250
MAX_REQUIRES_BLOCKS = 3
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def python_blocks(text):
    """(line number of the opening fence, source) for every ```python block of `text`."""
    return [(text.count("\n", 0, match.start()) + 1, match.group(1)) for match in _BLOCK.finditer(text)]


def requires_hardware(source):
    return source.lstrip().startswith("# requires:")


def test_python_blocks_finds_fenced_blocks_only():
    text = "intro\n```python\nx = 1\n```\n```bash\nls\n```\n\n```python\n# requires: a TPU\ny = 2\n```\n"
    blocks = python_blocks(text)
    assert blocks == [(2, "x = 1\n"), (9, "# requires: a TPU\ny = 2\n")]
    assert [requires_hardware(source) for _, source in blocks] == [False, True]


def test_readme_commands_are_where_ci_reads_them():
    lines = README.read_text().splitlines()
    install = [line for line in lines if line.startswith("pip install -e ")]
    tests = [line for line in lines if line.startswith("pytest ")]
    assert install, "README.md has no line starting with `pip install -e ` (read by .ci/run)"
    assert tests, "README.md has no line starting with `pytest ` (read by .ci/run)"
    # CI runs every test, the docs build included: the docs extra is installed and the slow tests selected.
    assert "docs" in install[0] and "test" in install[0], install[0]
    assert '-m "slow or not slow"' in tests[0] and "--doctest-modules" in tests[0], tests[0]


def test_readme_is_short_and_its_blocks_are_well_formed():
    text = README.read_text()
    assert len(text.splitlines()) <= MAX_README_LINES
    blocks = python_blocks(text)
    assert blocks, "README.md has no ```python block"
    hardware = [line for line, source in blocks if requires_hardware(source)]
    assert len(hardware) <= MAX_REQUIRES_BLOCKS, f"`# requires:` blocks at lines {hardware}"
    for line, source in blocks:
        compile(source, f"README.md block at line {line}", "exec")


@pytest.mark.slow
def test_readme_python_blocks_run(tmp_path):
    parts = []
    for line, source in python_blocks(README.read_text()):
        if requires_hardware(source):
            continue
        # Keep README line numbers in tracebacks: pad with blank lines up to the block's first line.
        padding = line - sum(part.count("\n") for part in parts)
        parts.append("\n" * padding + source)
    script = tmp_path / "readme_blocks.py"
    script.write_text("".join(parts))
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, (
        f"README.md's Python blocks failed (line numbers are README.md's):\n{result.stderr[-6000:]}")
