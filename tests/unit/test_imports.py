"""The house's import rules, read from the source: no import circle in models/ and search/, models/
imports nothing of search/, and each layer of search/ imports only the layers below it.

Every import counts, also one inside a function or under TYPE_CHECKING: a module that needs one which
needs it back is a concept in the wrong room, whenever the import runs.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("models", "search")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The project's modules that `path` imports (`from search import space` names the module search.study.space)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in modules and name not in PACKAGES)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {_module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}
    return {name: _imports(path, set(paths)) - {name} for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (a, b, ..., a), or None."""
    state: dict[str, str] = {}  # "open" while on the path, "done" once every import below it was walked

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = "open"
        for target in sorted(graph.get(name, ())):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target, [*path, target])) is not None:
                return cycle
        state[name] = "done"
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name, [name])) is not None:
            return cycle
    return None


def test_no_import_circle() -> None:
    graph = import_graph()
    assert {
        "search.study.definition",
        "search.study.loader",
        "search.evaluation.evaluate",
        "models.nets.configs",
    } <= graph.keys()
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_circle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_models_import_nothing_of_search() -> None:
    graph = import_graph()
    reaching = {name: sorted(t for t in targets if t.startswith("search")) for name, targets in graph.items()}
    assert {name: targets for name, targets in reaching.items() if name.startswith("models") and targets} == {}


def test_the_definition_data_is_a_leaf() -> None:
    """search.study.definition holds plain data: the builders and the loader stand above it, never below."""
    assert import_graph()["search.study.definition"] == set()


# search/'s layers, lowest first: a module imports its own layer and those below it, never one above.
# errors, describe and variants (the error base, number formats and the plain table, the variant-name
# grammar) serve every layer.
SEARCH_LAYERS = (
    ("errors", "describe", "variants", "defaults"),
    ("study",),
    ("storage",),
    ("run",),
    ("evaluation",),
    ("reproduction",),
    ("reporting",),
    ("cli",),
    ("__main__",),
)
MODELS_LAYERS = (("errors",), ("data", "nets"), ("training",))


def _layer_rank(name: str, layers: tuple[tuple[str, ...], ...]) -> int | None:
    parts = name.split(".")
    if len(parts) < 2:
        return None  # the package itself: its __init__ names the public API of every layer
    return next(rank for rank, members in enumerate(layers) if parts[1] in members)


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a module in a higher layer of the same package, as 'importer -> imported'."""
    found = []
    for package, layers in (("search", SEARCH_LAYERS), ("models", MODELS_LAYERS)):
        for name, targets in graph.items():
            if not name.startswith(package + ".") or (rank := _layer_rank(name, layers)) is None:
                continue
            for target in sorted(targets):
                if target.startswith(package + ".") and (_layer_rank(target, layers) or 0) > rank:
                    found.append(f"{name} -> {target}")
    return sorted(found)


def test_every_module_sits_in_a_named_layer() -> None:
    for package, layers in (("search", SEARCH_LAYERS), ("models", MODELS_LAYERS)):
        rooms = {name.split(".")[1] for name in import_graph() if name.startswith(package + ".")}
        assert rooms <= {room for members in layers for room in members}, package


def test_search_and_models_layers_import_only_downwards() -> None:
    assert layer_violations(import_graph()) == []


def test_the_layer_check_finds_an_upward_import() -> None:
    graph = {"search.study.space": {"search.run.objective"}, "search.run.objective": {"search.study.space"}}
    assert layer_violations(graph) == ["search.study.space -> search.run.objective"]


HEAVY = ("torch", "scipy", "sklearn", "optuna", "matplotlib")


@pytest.mark.parametrize(
    ("module", "allowed"),
    [
        ("search.cli.app", {"optuna"}),  # what `search --version` and every command's --help load
        ("search.study.loader", {"optuna"}),  # `search studies`: the definitions, no training stack
        ("search.reporting.tables", {"optuna"}),  # `search show`: stored trials and the selection, as tables
        ("models.errors", set()),
        ("models.data.sizes", set()),
        ("search.defaults", set()),
    ],
)
def test_the_command_line_starts_without_the_training_stack(module: str, allowed: set[str]) -> None:
    """Torch, scipy and scikit-learn cost seconds to import: a command loads them when it trains or tests,
    not to print its help or list the studies (the `models` package resolves its names on first use)."""
    code = f"import json, sys, {module}; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert set(loaded) <= allowed, loaded


def test_the_models_package_names_resolve_on_first_use() -> None:
    import models

    assert all(getattr(models, name) is not None for name in models.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        models.nothing  # noqa: B018
