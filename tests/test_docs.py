"""The documentation site: it builds with `mkdocs build --strict`, and its API reference lists every public name."""

import importlib
import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

import keras_longtail

REPO = pathlib.Path(__file__).resolve().parents[1]
API = REPO / "docs" / "api"
NAMESPACES = [name for name in keras_longtail.__all__ if not name.startswith("_")]


def _load_doctest_fences():
    spec = importlib.util.spec_from_file_location("doctest_fences", REPO / "docs" / "_ext" / "doctest_fences.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fence_doctests


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_api_reference_lists_every_public_name(namespace):
    page = API / f"{namespace}.md"
    assert page.is_file(), f"docs/api/{namespace}.md is missing (and from the nav in mkdocs.yml)"
    documented = set(re.findall(r"^::: [\w.]+\.(\w+)$", page.read_text(), re.MULTILINE))
    exported = set(importlib.import_module(f"keras_longtail.{namespace}").__all__)
    assert exported <= documented, (
        f"add `::: <module>.<name>` lines to docs/api/{namespace}.md for {sorted(exported - documented)}")


def test_every_api_page_is_in_the_nav():
    nav = (REPO / "mkdocs.yml").read_text()
    for page in API.glob("*.md"):
        assert f"api/{page.name}" in nav, page.name


def test_doctest_fences_wrap_doctest_runs_only():
    fence_doctests = _load_doctest_fences()
    text = "Example:\n\n>>> x = [1]\n>>> x[0]\n1\n\nText [a][b].\n```python\n>>> inside_a_fence\n```\n  >>> y\n  [1][2]"
    assert fence_doctests(text) == (
        "Example:\n\n```pycon\n>>> x = [1]\n>>> x[0]\n1\n```\n\nText [a][b].\n```python\n>>> inside_a_fence\n```\n"
        "  ```pycon\n  >>> y\n  [1][2]\n  ```")


def test_doctest_fences_keep_formula_underscores_literal():
    fence_doctests = _load_doctest_fences()
    text = "θ_k ← θ_k + Σ_{i: y_i = k} (1 − p'_ik), `p'_ik`\n>>> f(p'_i)\n\n    code p'_i"
    assert fence_doctests(text) == (
        "θ_k ← θ_k + Σ\\_{i: y_i = k} (1 − p'\\_ik), `p'_ik`\n```pycon\n>>> f(p'_i)\n```\n\n    code p'_i")


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    """What CI runs: any warning (a broken link, a page outside the nav, a docstring griffe cannot parse) fails."""
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
                             "-d", str(tmp_path / "site")], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-6000:]
    assert (tmp_path / "site" / "api" / "losses" / "index.html").is_file()
