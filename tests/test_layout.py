"""The package's layout (docs/architecture.md): dependencies point one way and there is no import circle, counting
the imports made inside functions too (only `if TYPE_CHECKING:` blocks, which never run, are left out)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "omniavsr_cli"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.AST, parents: dict) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def _imports() -> dict[str, set[str]]:
    """Each module of the package -> the package's modules it imports (a package counts as its __init__)."""
    files = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(tree):
            if _type_checking_only(node, parents):
                continue
            if isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                module = f"{base}.{node.module}" if node.level and node.module else (base if node.level else node.module)
                for alias in node.names:  # `from . import x` may name a module
                    targets.add(f"{module}.{alias.name}" if f"{module}.{alias.name}" in files else module)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


GRAPH = _imports()


def _reaches(start: str, goal: str) -> list[str] | None:
    """An import path from start to goal, if any."""
    stack, seen = [[start]], {start}
    while stack:
        path = stack.pop()
        for target in sorted(GRAPH[path[-1]]):
            if target == goal:
                return path + [target]
            if target not in seen:
                seen.add(target)
                stack.append(path + [target])
    return None


def test_there_is_no_import_circle():
    # The package root only re-exports the API lazily (inside __getattr__) and is imported for __version__.
    circles = []
    for module, targets in GRAPH.items():
        if module == "omniavsr_cli":
            continue
        for target in targets:
            if target != "omniavsr_cli" and (back := _reaches(target, module)) and "omniavsr_cli" not in back:
                circles.append(" -> ".join([module, *back]))
    assert not circles


@pytest.mark.parametrize(
    "lower, higher",
    [
        ("omniavsr_cli.training", "omniavsr_cli.transcribe"),  # training and eval never need the transcription pipeline
        ("omniavsr_cli.model", "omniavsr_cli.decoding"),  # the model does not know how it is batched
        ("omniavsr_cli.lips", "omniavsr_cli.training"),  # prep-lips crops; manifests are the training package's
        ("omniavsr_cli.media", "omniavsr_cli.lips"),
        ("omniavsr_cli.model", "omniavsr_cli.registry"),  # checksums are the weights code's
    ],
)
def test_dependencies_point_one_way(lower, higher):
    wrong = [f"{m} imports {t}" for m, ts in GRAPH.items() if m.startswith(lower) for t in ts if t.startswith(higher)]
    assert not wrong


def test_only_the_cli_knows_the_command_line():
    outside = [m for m in GRAPH if not m.startswith("omniavsr_cli.cli") and m != "omniavsr_cli.__main__"]  # __main__ runs the CLI
    wrong = [f"{m} imports {t}" for m in outside for t in GRAPH[m] if t.startswith("omniavsr_cli.cli")]
    assert not wrong
    library = [p for p in PACKAGE.rglob("*.py") if "cli" not in p.relative_to(PACKAGE).parts]
    assert not [str(p.relative_to(PACKAGE)) for p in library if "ExitCode" in p.read_text(encoding="utf-8")]
