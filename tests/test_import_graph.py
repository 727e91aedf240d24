"""The package's import graph, read with `ast` (nothing is imported): one home per method (issue 18).

(a) No module imports a private module (a path part starting with `_`, e.g. `keras_longtail.dual_phase._similarity`)
    or a private name (`from keras_longtail.x.y import _helper`) of another package. A package is the first level
    under `keras_longtail/` (`gala`, `losses`, ...; a top-level module such as `cli.py` is its own package).
    `keras_longtail._internal` is the shared plumbing every package may use.
(b) No import cycle between packages.

Both count every import, at module level and inside functions (a deferred import is still a dependency), and
relative imports. The root package `keras_longtail/__init__.py` imports every namespace by design (with
`importlib`), so imports of the root itself (`from keras_longtail import __version__`) are not edges.
"""

import ast
import collections
import functools
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = "_internal"

# Known violations on this branch that other helpers are removing as they move their methods (issue 18). Each
# entry: (importing module, imported module or "module:name") -> owner. The lead empties this after merging; an
# entry that no longer occurs fails `test_allow_list_has_no_stale_entries`, so the list can only shrink.
ALLOWED_PRIVATE_IMPORTS = {}
# Package-level cycles known on this branch, as sorted tuples of the packages in the cycle -> owner.
ALLOWED_CYCLES = {}


def _module_name(path, root):
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules(root=REPO):
    return {_module_name(path, root): path for path in sorted((root / "keras_longtail").rglob("*.py"))}


def _imports(modules):
    """(importer, imported module, imported name or None, line) for every `keras_longtail` import."""
    found = []
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found += [(name, alias.name, None, node.lineno) for alias in node.names
                          if alias.name.split(".")[0] == "keras_longtail"]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                if base.split(".")[0] != "keras_longtail":
                    continue
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    if submodule in modules:  # `from package import module`
                        found.append((name, submodule, None, node.lineno))
                    else:
                        found.append((name, base, alias.name, node.lineno))
    return found


def _package(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None  # None: the root package


def _private(part):
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


@functools.lru_cache(maxsize=None)
def _private_imports(root=REPO):
    violations = {}
    for importer, module, name, line in _imports(_modules(root)):
        source, target = _package(importer), _package(module)
        if target is None or target in (source, SHARED):
            continue
        if any(_private(part) for part in module.split(".")[1:]):
            violations[(importer, module)] = f"{importer}:{line} imports {module}"
        elif name is not None and _private(name):
            violations[(importer, f"{module}:{name}")] = f"{importer}:{line} imports {name} from {module}"
    return violations


@functools.lru_cache(maxsize=None)
def _package_graph(root=REPO):
    """package -> {imported package: [importer:line -> module, ...]}."""
    graph = collections.defaultdict(lambda: collections.defaultdict(list))
    for importer, module, _, line in _imports(_modules(root)):
        source, target = _package(importer), _package(module)
        if source is not None and target is not None and source != target:
            graph[source][target].append(f"{importer}:{line} -> {module}")
    return graph


def _cycles(graph):
    """The strongly connected components with more than one package (Tarjan), each as a sorted tuple."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, ()):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(tuple(sorted(component)))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _describe(graph, component):
    return "; ".join(f"{a} -> {b}: {graph[a][b][:3]}" for a in component for b in component if b in graph[a])


def test_no_private_import_across_packages():
    violations = {key: text for key, text in _private_imports().items() if key not in ALLOWED_PRIVATE_IMPORTS}
    assert not violations, ("private modules/names imported from another package (move the code into one "
                            "package, or the helper into keras_longtail._internal): " + "; ".join(violations.values()))


def test_no_import_cycle_between_packages():
    graph = _package_graph()
    cycles = [component for component in _cycles(graph) if component not in ALLOWED_CYCLES]
    assert not cycles, "import cycles between packages: " + " | ".join(_describe(graph, c) for c in cycles)


def test_allow_list_has_no_stale_entries():
    stale = [key for key in ALLOWED_PRIVATE_IMPORTS if key not in _private_imports()]
    stale += [cycle for cycle in ALLOWED_CYCLES if cycle not in _cycles(_package_graph())]
    assert not stale, f"fixed on this branch: remove from the allow-lists in tests/test_import_graph.py: {stale}"


def test_the_checks_catch_what_they_look_for(tmp_path):
    """The analysis itself, on a synthetic package (a checker that finds nothing must be able to find something):
    a private module imported from another package in a function, a private name through a relative import, a
    cycle a -> b -> a made of a deferred and a relative import, and the allowed cases next to them."""
    files = {
        "__init__.py": "import importlib\n",
        "_internal/__init__.py": "",
        "_internal/plumbing.py": "def _helper():\n    pass\n",
        "a/__init__.py": "from keras_longtail.a.x import f\n",
        "a/_solver.py": "def solve():\n    pass\n",
        "a/x.py": ("from keras_longtail.a import _solver\n"          # private, same package: allowed
                   "from keras_longtail._internal.plumbing import _helper\n"  # shared plumbing: allowed
                   "from keras_longtail import __version__\n"          # the root: not an edge
                   "def f():\n    from keras_longtail.b.y import g\n"),  # deferred: a -> b
        "b/__init__.py": "",
        "b/y.py": ("from ..a.x import _private_name\n"                  # relative: b -> a, a private name
                   "def g():\n    import keras_longtail.a._solver\n"),  # deferred: a private module of a
        "c/__init__.py": "from keras_longtail.a import x\n",             # `from package import module`
    }
    for name, text in files.items():
        (tmp_path / "keras_longtail" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "keras_longtail" / name).write_text(text)
    assert set(_private_imports(tmp_path)) == {("keras_longtail.b.y", "keras_longtail.a.x:_private_name"),
                                               ("keras_longtail.b.y", "keras_longtail.a._solver")}
    graph = _package_graph(tmp_path)
    assert _cycles(graph) == [("a", "b")]
    assert dict(graph["c"]) == {"a": ["keras_longtail.c:1 -> keras_longtail.a.x"]}
    assert "_internal" in graph["a"] and None not in graph["a"]
    assert _cycles({"a": {"b": []}, "b": {"c": []}, "c": {"a": []}, "d": {"a": []}}) == [("a", "b", "c")]
    assert _cycles({"a": {"b": []}, "b": {}}) == []
    assert not _private("__init__") and not _private("__version__") and not _private("gala_loss")


def test_the_analysis_sees_the_package():
    """The graph is not empty, and it sees relative, deferred and `from package import module` imports."""
    modules = _modules()
    assert "keras_longtail.gala.gala_loss" in modules and "keras_longtail._internal.validation" in modules
    edges = {(importer, module) for importer, module, _, _ in _imports(modules)}
    assert ("keras_longtail.gala.gala_loss", "keras_longtail.gala.gala_statistics") in edges
    assert ("keras_longtail.gala.gala_loss", "keras_longtail._internal.sparse_labels") in edges
    assert "gala" in _package_graph()["losses"]
