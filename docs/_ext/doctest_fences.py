"""Griffe extension for the API reference: renders Keras-style doctest examples as code.

The package's docstrings follow Keras: an `Example:` line, a blank line, then `>>>` lines at the
docstring's own indentation. Markdown would read those as nested block quotes (and `[a][b]` in their
output as reference links), so every run of doctest lines (`>>>`, `...` and the output that follows, up
to a blank line) outside a fenced block is wrapped in a ```pycon fence before griffe parses the
docstring. The docstrings' plain-text formulas (`p'_ik`, `Σ_{i: y_i = k}`) are kept literal: an underscore
at a word boundary in text lines (indented less than 4 spaces, outside code) is escaped, so Markdown does not
read a pair of them as emphasis (underscores inside a word, as in `z_ij`, never are). Nothing else changes; the doctests themselves run under pytest
--doctest-modules.
"""

import re

import griffe

_FENCE = "```"
_CODE_SPAN = re.compile(r"(`+).+?\1")
_UNDERSCORES = re.compile(r"_+")


def _escape_run(match):
    text, start, end = match.string, match.start(), match.end()
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    if before == "\\" or (before.isalnum() and after.isalnum()):
        return match.group(0)  # already escaped, or inside a word (z_ij)
    return "\\_" * (end - start)


def escape_formula_underscores(line):
    """Escapes each run of underscores at a word boundary in `line`, outside inline code spans."""
    out, start = [], 0
    for match in _CODE_SPAN.finditer(line):
        out.append(_UNDERSCORES.sub(_escape_run, line[start:match.start()]))
        out.append(match.group(0))
        start = match.end()
    out.append(_UNDERSCORES.sub(_escape_run, line[start:]))
    return "".join(out)


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
        elif not in_doctest and not in_fence and len(line) - len(stripped) < 4:
            line = escape_formula_underscores(line)  # text, not an indented code block or a section's body
        out.append(line)
    if in_doctest:
        out.append(indent + _FENCE)
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    """Applies `fence_doctests` to every docstring griffe loads."""

    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)
