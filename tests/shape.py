"""Measures the package's shape from its source (no import): modules, lines, cycles, local imports, settings reach.

``python -m tests.shape`` prints the numbers the shape notes quote; ``tests/unit/test_shape.py``
holds the package to them (no import cycle, local imports commented, settings unpacked in the mode).

- **import graph**: an edge for every ``import mlgate...`` / ``from mlgate... import`` anywhere in a
  module, at the top or inside a function (``if TYPE_CHECKING:`` imports are left out: they never
  run). ``from mlgate.x import y`` where ``y`` is a submodule is an edge to ``mlgate.x.y``; a package
  import also runs its ``__init__``.
- **local imports**: import statements inside a function body (not under ``TYPE_CHECKING``).
- **settings reach** of a mode, followed through the calls: start at the mode function's ``settings``
  parameter; wherever a function passes that object itself (the bare name, not ``settings.x`` or a
  value built from it) to a function of the package, follow it into the parameter that receives it.
  The reach is the set of modules visited (the mode's own included), and the number of functions.
  A call is resolved by the callee's name: a function of the caller's module, else of a module it
  imports, else any of the package.
- **typed takers**: functions whose parameter is annotated with the mode's settings class or a class
  it inherits from in ``mlgate.settings`` (``CommonSettings``, ``DvcInputs``, ...), wherever they are.
"""

from __future__ import annotations

import ast
import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mlgate"
MODES = {"data-stats": "DataStatsSettings", "model-gate": "ModelGateSettings", "promote": "PromoteSettings",
         "publish": "PublishSettings"}
MODE_FUNCTIONS = {"data-stats": ("mlgate.data.mode", "run_data_stats"),
                  "model-gate": ("mlgate.model.mode", "run_model_gate"),
                  "promote": ("mlgate.model.promote", "run_promote"),
                  "publish": ("mlgate.fork_publish", "run_publish")}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package by dotted name."""
    return {module_name(path, package): path for path in sorted(package.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, in_function: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import that can run, with whether it sits inside a function."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for other in child.orelse:
                yield from _imports(ast.Module(body=[other], type_ignores=[]), in_function)
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, in_function
        yield from _imports(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                      ast.Lambda)))


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (top level or function-local), packages included."""
    known = modules(package)
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        edges: set[str] = set()
        for node, _ in _imports(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for target in targets:
                if target in known:
                    edges |= {target, *(parent for parent in _parents(target) if parent in known)}
        edges.discard(name)
        edges -= set(_parents(name))  # a submodule's parent package is already being imported
        graph[name] = edges
    return graph


def import_cycles(package: Path = PACKAGE) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    graph = import_graph(package)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


@dataclasses.dataclass(frozen=True)
class LocalImport:
    module: str
    line: int
    text: str
    commented: bool
    """A comment on the line, or above it (or above the run of imports it belongs to), says why it is local."""


def _comment_above(lines: list[str], lineno: int) -> bool:
    """A comment on the line above, or above the run of import lines this one belongs to."""
    for above in reversed(lines[: lineno - 1]):
        stripped = above.strip()
        if stripped.startswith("#"):
            return True
        if not stripped.startswith(("from ", "import ")):
            return False
        if "#" in stripped:
            return True
    return False


def local_imports(package: Path = PACKAGE) -> list[LocalImport]:
    found = []
    for name, path in modules(package).items():
        lines = path.read_text().splitlines()
        for node, in_function in _imports(ast.parse(path.read_text())):
            if in_function:
                text = lines[node.lineno - 1]
                commented = "#" in text or _comment_above(lines, node.lineno)
                found.append(LocalImport(name, node.lineno, text.strip(), commented))
    return found


def _settings_classes(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Class name in mlgate.settings -> the names of itself and every base class defined there."""
    tree = ast.parse((package / "settings.py").read_text())
    bases = {node.name: [b.id for b in node.bases if isinstance(b, ast.Name)]
             for node in tree.body if isinstance(node, ast.ClassDef)}

    def closure(name: str) -> set[str]:
        return {name}.union(*(closure(base) for base in bases.get(name, []) if base in bases))

    return {name: closure(name) for name in bases}


def _annotation_names(node: ast.expr | None) -> set[str]:
    if node is None:
        return set()
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return set()
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}


def settings_takers(mode: str, package: Path = PACKAGE) -> list[tuple[str, str]]:
    """(module, function) for every function outside mlgate.settings that takes ``mode``'s settings object."""
    classes = _settings_classes(package)[MODES[mode]]
    found = []
    for name, path in modules(package).items():
        if name == "mlgate.settings":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
                if any(_annotation_names(arg.annotation) & classes for arg in args):
                    found.append((name, node.name))
    return found


Function = ast.FunctionDef | ast.AsyncFunctionDef


INDIRECT = {"registry": "connect_wandb"}
"""Calls through a stored callable: ``clients.registry(...)`` is the registry factory, :func:`connect_wandb`."""


def _functions(package: Path = PACKAGE) -> dict[str, list[tuple[str, Function, str]]]:
    """Function name -> (module, definition, class name or "") for every function and method of the package."""
    found: dict[str, list[tuple[str, Function, str]]] = {}
    for name, path in modules(package).items():
        tree = ast.parse(path.read_text())
        owner = {id(item): node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
                 for item in node.body}
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.setdefault(node.name, []).append((name, node, owner.get(id(node), "")))
    return found


def _params(function: Function) -> list[str]:
    args = [arg.arg for arg in (*function.args.posonlyargs, *function.args.args)]
    return args[1:] if args and args[0] in ("self", "cls") else args


def _received_as(call: ast.Call, name: str, callee: Function) -> str | None:
    """The parameter of ``callee`` that receives the bare name ``name`` in ``call``, if it is passed."""
    params = _params(callee)
    for position, arg in enumerate(call.args):
        if isinstance(arg, ast.Name) and arg.id == name and position < len(params):
            return params[position]
    for keyword in call.keywords:
        if isinstance(keyword.value, ast.Name) and keyword.value.id == name and keyword.arg:
            return keyword.arg
    return None


def _resolve(call: ast.Call, caller: str, functions: dict[str, list[tuple[str, Function, str]]],
             graph: dict[str, set[str]]) -> list[tuple[str, Function, str]]:
    func = call.func
    callee = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    candidates = functions.get(INDIRECT.get(callee, callee), [])
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):  # Class.method(...)
        candidates = [c for c in candidates if c[2] == func.value.id] or candidates
    for preferred in ([c for c in candidates if c[0] == caller], [c for c in candidates if c[0] in graph[caller]]):
        if preferred:
            return preferred
    return candidates


def settings_flow(mode: str, package: Path = PACKAGE) -> set[tuple[str, str]]:
    """(module, function) for every function the mode's settings object is passed into (see the docstring)."""
    functions = _functions(package)
    graph = import_graph(package)
    start_module, start = MODE_FUNCTIONS[mode]
    todo = [(module, node, "settings") for module, node, _ in functions[start] if module == start_module]
    seen: set[tuple[str, str]] = set()
    while todo:
        module, node, param = todo.pop()
        if (module, node.name) in seen:
            continue
        seen.add((module, node.name))
        for call in ast.walk(node):
            if not isinstance(call, ast.Call):
                continue
            for callee_module, callee, _ in _resolve(call, module, functions, graph):
                received = _received_as(call, param, callee)
                if received is not None and callee_module != "mlgate.settings":
                    todo.append((callee_module, callee, received))
    return seen


def settings_reach(mode: str, package: Path = PACKAGE) -> list[str]:
    """The modules ``mode``'s settings object reaches, followed through the calls (see the module docstring)."""
    return sorted({module for module, _ in settings_flow(mode, package)})


def _function_lengths(package: Path = PACKAGE) -> Iterator[tuple[int, str]]:
    for name, path in modules(package).items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno is not None
                yield node.end_lineno - node.lineno + 1, f"{name}.{node.name}"


def report(package: Path = PACKAGE) -> str:
    """The numbers, one line each, for the package at ``package``."""
    found = modules(package)
    lines = {name: len(path.read_text().splitlines()) for name, path in found.items()}
    longest = max(lines, key=lambda name: lines[name])
    length, function = max(_function_lengths(package))
    local = local_imports(package)
    cycles = import_cycles(package)
    per_module: dict[str, int] = {}
    for item in local:
        per_module[item.module] = per_module.get(item.module, 0) + 1
    out = [
        f"modules: {len(found)}",
        f"lines: {sum(lines.values())}",
        f"longest module: {longest} ({lines[longest]} lines)",
        f"longest function: {function} ({length} lines)",
        f"import cycles: {len(cycles)} {cycles}",
        f"local imports: {len(local)} ({sum(not item.commented for item in local)} without a comment); "
        f"most: " + ", ".join(f"{m} {n}" for m, n in sorted(per_module.items(), key=lambda kv: -kv[1])[:5]),
    ]
    for mode in MODES:
        reach = settings_reach(mode, package)
        out.append(f"settings reach, {mode}: {len(reach)} modules, {len(settings_flow(mode, package))} functions: "
                   + " ".join(m.removeprefix("mlgate.") for m in reach))
        takers = settings_takers(mode, package)
        typed = sorted({m for m, _ in takers})
        out.append(f"  typed takers: {len(typed)} modules, {len(takers)} functions: "
                   + " ".join(m.removeprefix("mlgate.") for m in typed))
    return "\n".join(out)


if __name__ == "__main__":  # python -m tests.shape [PACKAGE_FOLDER], e.g. another checkout's mlgate/
    sys.stdout.write(report(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else PACKAGE) + "\n")
