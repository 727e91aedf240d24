"""Griffe extension for the API reference: renders Keras-style doctest examples as code.

The package's docstrings follow Keras: an `Example:` line, a blank line, then `>>>` lines at the
docstring's own indentation. Markdown would read those as nested block quotes (and `[a][b]` in their
output as reference links), so every run of doctest lines (`>>>`, `...` and the output that follows, up
to a blank line) outside a fenced block is wrapped in a ```pycon fence before griffe parses the
docstring. Nothing else changes; the doctests themselves run under pytest --doctest-modules.
"""

import griffe

_FENCE = "```"


def fence_doctests(text):
    """Returns `text` with each run of doctest lines outside a fence wrapped in a ```pycon fence."""
    out, in_fence, in_doctest, indent = [], False, False, ""
    for line in text.splitlines():
        stripped = line.lstrip()
        if in_doctest and not stripped:
            out.append(indent + _FENCE)
            in_doctest = False
        elif not in_doctest and not in_fence and stripped.startswith(">>>"):
            indent = line[: len(line) - len(stripped)]
            out.append(indent + _FENCE + "pycon")
            in_doctest = True
        elif not in_doctest and stripped.startswith(_FENCE):
            in_fence = not in_fence
        out.append(line)
    if in_doctest:
        out.append(indent + _FENCE)
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    """Applies `fence_doctests` to every docstring griffe loads."""

    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)
