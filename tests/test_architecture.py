"""The layers of obce hold: imports run downwards, no cycle, no private name across modules, every
module documented and on the architecture page's map."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "obce"
#: Stage modules (and packages): the data flow's steps. They never import the layers above them.
STAGES = ("obce.models", "obce.data", "obce.activations", "obce.persistence", "obce.baselines", "obce.scoring",
          "obce.pruning", "obce.compensation", "obce.distill", "obce.glue", "obce.methods", "obce.results",
          "obce.files", "obce.text", "obce.errors", "obce.paths", "obce.checkpoint", "obce.units", "obce.unit_scores",
          "obce.search")
ABOVE = ("obce.analysis", "obce.experiments", "obce.explain", "obce.plots", "obce.book", "obce.cli")
FRONT = ("obce.plots", "obce.book", "obce.cli")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, list[str], int]]:
    """(imported module, names, line) of every import in the file, function-level ones included."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("obce"):
                names = [a.name for a in node.names]
                subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
                found += [(s, [], node.lineno) for s in subs]
                rest = [n for n in names if f"{target}.{n}" not in modules]
                if rest or not subs:
                    found.append((target, rest, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("obce")]
    return found


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_imports_run_downwards():
    modules = _modules()
    wrong = []
    for name, path in modules.items():
        for target, _, line in _imports(name, path, modules):
            if _under(name, STAGES) and _under(target, ABOVE):
                wrong.append(f"{path.relative_to(REPO)}:{line}: stage {name} imports {target}")
            if _under(name, ("obce.analysis",)) and _under(target, ("obce.experiments", *FRONT)):
                wrong.append(f"{path.relative_to(REPO)}:{line}: analysis imports {target}")
            if _under(name, ("obce.experiments",)) and _under(target, ("obce.analysis", *FRONT)):
                wrong.append(f"{path.relative_to(REPO)}:{line}: experiments imports {target}")
    assert not wrong, "\n".join(wrong)


def _graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    return {name: {t for t, _, _ in _imports(name, path, modules) if t in modules and t != name}
            for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[str]:
    """Every cycle a depth-first walk meets, as "a -> b -> a"."""
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_no_import_cycle():
    cycles = _cycles(_graph(_modules()))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_cycle_check_finds_a_cycle_through_a_function_level_import(tmp_path):
    pkg = tmp_path / "obce"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .b import g\n")
    (pkg / "b.py").write_text("from .a import f\n\n\ndef g():\n    pass\n")
    modules = {"obce": pkg / "__init__.py", "obce.a": pkg / "a.py", "obce.b": pkg / "b.py"}
    assert _cycles(_graph(modules)) == ["obce.a -> obce.b -> obce.a"]


def test_no_private_name_across_modules():
    modules = _modules()
    wrong = []
    for name, path in modules.items():
        for target, names, line in _imports(name, path, modules):
            private = [n for n in names if n.startswith("_") and n != "__version__"]
            if private and target != name:
                wrong.append(f"{path.relative_to(REPO)}:{line}: {private} from {target}")
            last = target.rsplit(".", 1)[-1]
            if last.startswith("_") and last != "__init__" and target.rsplit(".", 1)[0] != name.rsplit(".", 1)[0] \
                    and target.rsplit(".", 1)[0] != name:
                wrong.append(f"{path.relative_to(REPO)}:{line}: private module {target} outside its package")
    assert not wrong, "\n".join(wrong)


def test_every_module_and_public_function_is_documented():
    missing = []
    for name, path in _modules().items():
        tree = ast.parse(path.read_text())
        if not ast.get_docstring(tree):
            missing.append(f"{name}: no module docstring")
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_") \
                    and not ast.get_docstring(node):
                missing.append(f"{name}.{node.name}: no docstring")
    assert not missing, "\n".join(missing)


def test_every_module_is_on_the_architecture_map():
    page = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    mapped = set(re.findall(r"^\| `(obce/[\w/]+\.py)` \|", page, re.M))
    present = {str(p.relative_to(REPO)) for p in _modules().values()}
    assert present - mapped == set(), f"modules missing from docs/ARCHITECTURE.md: {sorted(present - mapped)}"
    assert mapped - present == set(), f"docs/ARCHITECTURE.md maps modules that do not exist: {sorted(mapped - present)}"


def test_readme_links_only_inside_the_repository():
    readme = (REPO / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)", readme)
    outside = [x for x in links if x.startswith("..") or (not x.startswith("http") and not (REPO / x).exists())]
    assert not outside and "../shared/ARCHITECTURE" not in readme, f"README links outside the repository: {outside}"
