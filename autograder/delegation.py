"""Where a graded function comes from, judged from the notebook's source in the grader's process.

The kernel can hide any call it makes, so delegation is not watched at run time: it is read from
the code the student wrote (the answer cells and the cells they added), with Python's ``ast``:

- **Forbidden references** (:meth:`Analysis.findings`): the *definition* of a graded name (every
  statement that binds it, and, transitively, every notebook function, class or value it uses)
  refers to the reference (``solutions``), the autograder, a test-only library (``captum``,
  ``pytorch_grad_cam``) or a toolbox function that implements the graded function itself
  (e.g. ``interpkit.featureviz.render`` for ``visualize``; each check module lists them in
  ``TOOLBOX_IMPLEMENTATIONS``). Such a part earns no credit, and the report names the cell and
  line. Imports are followed through aliases (``import interpkit.featureviz as fv``, the
  notebook's own set-up cell included) and re-exports (resolved to the very objects).
- **Dynamic lookups** (:meth:`Analysis.review`): ``getattr`` with a computed name, ``exec``,
  ``eval``, ``compile``, ``__import__``, ``importlib``, ``globals()``/``vars()``,
  ``sys.modules``, ``__dict__`` and the like hide what they reach, so they are flagged for the
  instructor's review (the score stands until a human looks), with the cell and the line. Inside
  a definition they concern that graded name; at the top level of a cell, every graded name.

This is a reading of the source, not a proof: it catches the direct and the aliased routes and
flags the dynamic ones; what remains needs a human, which is what the flag asks for.
"""
from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass, field
from typing import Iterable

#: Packages whose use in a graded function's definition always forfeits that part's credit.
FORBIDDEN_PACKAGES = ("solutions", "autograder", "captum", "pytorch_grad_cam")

_DYNAMIC_CALLS = {"exec", "eval", "compile", "__import__", "globals", "locals", "vars"}
_NAME_CALLS = {"getattr", "setattr", "delattr"}
_DYNAMIC_ATTRIBUTES = {"__dict__", "__builtins__", "__globals__", "__code__", "__closure__",
                       "__subclasses__", "__getattribute__", "__loader__", "__spec__"}
_DYNAMIC_PATHS = ("importlib", "sys.modules", "operator.attrgetter", "operator.methodcaller",
                  "pickle.loads", "pickle.load", "marshal.loads", "types.FunctionType",
                  "types.CodeType", "builtins")


@dataclass(frozen=True)
class Cell:
    """One cell of student code: ``label`` names it in messages (its grade id, or "your cell
    after `<grade id>`")."""

    label: str
    source: str


@dataclass(frozen=True)
class Finding:
    """What was found, where: ``what`` is the dotted name (or construct), ``line`` the cell's
    line number, ``text`` that line."""

    what: str
    cell: str
    line: int
    text: str

    def describe(self) -> str:
        return f"`{self.what}` (cell `{self.cell}`, line {self.line}: {self.text.strip()!r})"


@dataclass
class _Statement:
    cell: Cell
    node: ast.stmt
    module_aliases: dict[str, str]


@dataclass(frozen=True)
class _Target:
    """What an imported name refers to: a module (``attr`` None) or an attribute of one (``from
    module import attr``, which falls back to the sub-module ``module.attr``)."""

    module: str
    attr: str | None = None

    @property
    def dotted(self) -> str:
        return self.module if self.attr is None else f"{self.module}.{self.attr}"

    def load(self):
        """The object, imported (only ever called for the toolbox's own modules)."""
        try:
            module = importlib.import_module(self.module)
        except ImportError:
            return None
        if self.attr is None:
            return module
        if hasattr(module, self.attr):
            return getattr(module, self.attr)
        try:
            return importlib.import_module(self.dotted)
        except ImportError:
            return None


def _imports(node: ast.stmt) -> dict[str, _Target]:
    """``{bound name: target}`` of an import statement."""
    found = {}
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                found[alias.asname] = _Target(alias.name)
            else:
                top = alias.name.split(".")[0]
                found[top] = _Target(top)
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
        for alias in node.names:
            if alias.name != "*":
                found[alias.asname or alias.name] = _Target(node.module, alias.name)
    return found


def _bound_names(node: ast.stmt) -> set[str]:
    """Names a top-level statement binds (definitions, assignments, loop and with targets,
    imports)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return set(_imports(node))
    names = set()
    targets = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    elif isinstance(node, (ast.For, ast.AsyncFor)):
        targets = [node.target]
    elif isinstance(node, (ast.With, ast.AsyncWith)):
        targets = [item.optional_vars for item in node.items if item.optional_vars is not None]
    for target in targets:
        names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    if isinstance(node, (ast.If, ast.Try, ast.While, ast.For, ast.With)):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                names |= _bound_names(child)
    return names


def _dotted(node: ast.AST) -> list[str] | None:
    """``a.b.c`` as ``["a", "b", "c"]`` (``getattr(a, "b")`` counts as ``a.b``)."""
    parts = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
              and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
              and isinstance(node.args[1].value, str)):
            parts.append(node.args[1].value)
            node = node.args[0]
        elif isinstance(node, ast.Name):
            parts.append(node.id)
            return parts[::-1]
        else:
            return None


def _resolve(target: _Target, attrs: list[str]) -> list:
    """The objects along ``target.attrs[0].attrs[1]...`` (the toolbox only), as far as they exist."""
    if target.module.split(".")[0] != "interpkit":
        return []
    obj = target.load()
    chain = [] if obj is None else [obj]
    for name in attrs:
        obj = getattr(obj, name, None)
        if obj is None:
            break
        chain.append(obj)
    return chain


def _resolve_path(path: str):
    """The object a dotted path of the toolbox names, by attribute access from its package (as
    ``fv.render`` is the function, not the module of the same name), else by import."""
    parts = path.split(".")
    chain = _resolve(_Target(parts[0]), parts[1:])
    if len(chain) == len(parts):
        return chain[-1]
    *module, attr = parts
    found = _Target(".".join(module), attr).load() if module else None
    return found


class Analysis:
    """The student's code of one notebook, read once; queried per graded name."""

    def __init__(self, cells: Iterable[Cell], context: Iterable[str] = ()):
        self.cells = list(cells)
        self.aliases: dict[str, set[_Target]] = {}
        for source in context:  # the locked set-up cells: their imports are the notebook's too
            try:
                tree = ast.parse(source)
            except SyntaxError:
                continue
            for node in tree.body:
                for name, path in _imports(node).items():
                    self.aliases.setdefault(name, set()).add(path)
        self.bindings: dict[str, list[_Statement]] = {}
        self.top_level_dynamic: list[Finding] = []
        self.unparsed: list[str] = []
        self._trees: list[tuple[Cell, ast.Module]] = []
        for cell in self.cells:
            try:
                tree = ast.parse(cell.source)
            except SyntaxError:
                self.unparsed.append(cell.label)
                continue
            self._trees.append((cell, tree))
            for node in tree.body:
                for name, path in _imports(node).items():
                    self.aliases.setdefault(name, set()).add(path)
        for cell, tree in self._trees:
            for node in tree.body:
                for name in _bound_names(node):
                    self.bindings.setdefault(name, []).append(_Statement(cell, node, {}))
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    self.top_level_dynamic += self._dynamic(cell, node, {})

    # ------------------------------------------------------------------ per graded name
    @staticmethod
    def _globals_used(node: ast.AST) -> set[str]:
        """Names ``node`` reads from the notebook's global scope: every name a top-level statement
        reads; for a function or class, the names it reads minus its own locals (its arguments
        and whatever it assigns, unless declared ``global``)."""
        loads = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            return loads
        local = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del))}
        for sub in ast.walk(node):
            if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                args = sub.args
                local |= {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs,
                                          *([args.vararg] if args.vararg else []),
                                          *([args.kwarg] if args.kwarg else [])]}
                if sub is not node and not isinstance(sub, ast.Lambda):
                    local.add(sub.name)
            elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                local |= set(_imports(sub))
            elif isinstance(sub, ast.ExceptHandler) and sub.name:
                local.add(sub.name)
        declared = {n for sub in ast.walk(node) if isinstance(sub, ast.Global) for n in sub.names}
        return loads - (local - declared)

    def _closure(self, name: str) -> list[_Statement]:
        """Every statement that defines ``name`` or a notebook name its definition uses."""
        seen_names, seen_nodes, out, todo = set(), set(), [], [name]
        while todo:
            current = todo.pop()
            if current in seen_names:
                continue
            seen_names.add(current)
            for statement in self.bindings.get(current, []):
                if id(statement.node) in seen_nodes:
                    continue
                seen_nodes.add(id(statement.node))
                out.append(statement)
                if isinstance(statement.node, (ast.Import, ast.ImportFrom)):
                    continue
                todo.extend(n for n in self._globals_used(statement.node) if n in self.bindings)
        return out

    def _references(self, node: ast.AST, local: dict[str, set[_Target]]
                    ) -> Iterable[tuple[str, _Target, list[str], ast.AST]]:
        """What ``node`` refers to through imports: (dotted name, import target, attribute chain
        after it, the AST node), every prefix of an attribute chain included."""
        for sub in ast.walk(node):
            if isinstance(sub, (ast.Import, ast.ImportFrom)):
                for target in _imports(sub).values():
                    yield target.dotted, target, [], sub
                continue
            parts = _dotted(sub) if isinstance(sub, (ast.Attribute, ast.Name, ast.Call)) else None
            if not parts:
                continue
            for target in local.get(parts[0], set()) | self.aliases.get(parts[0], set()):
                for cut in range(1, len(parts) + 1):
                    yield ".".join([target.dotted, *parts[1:cut]]), target, parts[1:cut], sub

    @staticmethod
    def _local_imports(node: ast.AST) -> dict[str, set[_Target]]:
        local: dict[str, set[_Target]] = {}
        for sub in ast.walk(node):
            if isinstance(sub, (ast.Import, ast.ImportFrom)):
                for name, path in _imports(sub).items():
                    local.setdefault(name, set()).add(path)
        return local

    def findings(self, name: str, toolbox: Iterable[str] = ()) -> list[Finding]:
        """Forbidden references in the definition of ``name``: the reference, the autograder,
        test-only libraries, or one of the ``toolbox`` objects (dotted paths) that implement it."""
        forbidden_objects = [obj for obj in (_resolve_path(p) for p in toolbox) if obj is not None]
        found: dict[tuple, Finding] = {}
        for statement in self._closure(name):
            local = self._local_imports(statement.node)
            for path, target, attrs, node in self._references(statement.node, local):
                hit = path.split(".")[0] in FORBIDDEN_PACKAGES
                if not hit and forbidden_objects:
                    chain = _resolve(target, attrs)
                    hit = len(chain) == len(attrs) + 1 and any(chain[-1] is f for f in forbidden_objects)
                if hit:
                    key = (statement.cell.label, getattr(node, "lineno", 0))
                    found.setdefault(key, self._finding(path, statement.cell, node))
            for named, node in self._named_modules(statement.node, local):
                if named.split(".")[0] in FORBIDDEN_PACKAGES:
                    key = (statement.cell.label, getattr(node, "lineno", 0))
                    found.setdefault(key, self._finding(named, statement.cell, node))
        return sorted(found.values(), key=lambda f: (f.cell, f.line))

    def _named_modules(self, node: ast.AST, local: dict[str, set[_Target]]) -> Iterable[tuple[str, ast.AST]]:
        """Modules named by a string constant where a module is looked up by name:
        ``importlib.import_module("x")``, ``__import__("x")``, ``sys.modules["x"]``."""
        def paths(expr) -> set[str]:
            parts = _dotted(expr)
            if not parts:
                return set()
            bases = local.get(parts[0], set()) | self.aliases.get(parts[0], set())
            return {".".join([b.dotted, *parts[1:]]) for b in bases} | {".".join(parts)}

        for sub in ast.walk(node):
            if isinstance(sub, ast.Call) and sub.args and isinstance(sub.args[0], ast.Constant) \
                    and isinstance(sub.args[0].value, str):
                if paths(sub.func) & {"importlib.import_module", "__import__"}:
                    yield sub.args[0].value, sub
            elif isinstance(sub, ast.Subscript) and isinstance(sub.slice, ast.Constant) \
                    and isinstance(sub.slice.value, str) and "sys.modules" in paths(sub.value):
                yield sub.slice.value, sub

    def review(self, name: str) -> list[Finding]:
        """Dynamic lookups to be reviewed for ``name``: in its definition, or at the top level of
        any student cell."""
        found = list(self.top_level_dynamic)
        for statement in self._closure(name):
            if isinstance(statement.node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found += self._dynamic(statement.cell, statement.node, self._local_imports(statement.node))
        unique = {(f.cell, f.line, f.what): f for f in found}
        return sorted(unique.values(), key=lambda f: (f.cell, f.line))

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _finding(what: str, cell: Cell, node: ast.AST) -> Finding:
        line = getattr(node, "lineno", 0)
        lines = cell.source.splitlines()
        return Finding(what, cell.label, line, lines[line - 1] if 0 < line <= len(lines) else "")

    def _dynamic(self, cell: Cell, node: ast.AST, local: dict[str, set[_Target]]) -> list[Finding]:
        found = []
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name):
                fn = sub.func.id
                if fn in _DYNAMIC_CALLS:
                    found.append(self._finding(f"{fn}(...)", cell, sub))
                elif fn in _NAME_CALLS and not (len(sub.args) >= 2 and isinstance(sub.args[1], ast.Constant)):
                    found.append(self._finding(f"{fn} with a computed name", cell, sub))
            elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load) and sub.id in _NAME_CALLS | _DYNAMIC_CALLS:
                parent_calls = [c for c in ast.walk(node) if isinstance(c, ast.Call) and c.func is sub]
                if not parent_calls:
                    found.append(self._finding(f"{sub.id} (used as a value)", cell, sub))
            elif isinstance(sub, ast.Attribute) and sub.attr in _DYNAMIC_ATTRIBUTES:
                found.append(self._finding(sub.attr, cell, sub))
        for path, _, _, sub in self._references(node, local):
            if isinstance(sub, (ast.Import, ast.ImportFrom)):
                continue  # importing a module looks nothing up; using it does
            if any(path == p or path.startswith(p + ".") for p in _DYNAMIC_PATHS):
                found.append(self._finding(path, cell, sub))
        unique = {(f.line, f.what): f for f in found}
        return list(unique.values())


def describe(findings: list[Finding], limit: int = 3) -> str:
    """The first ``limit`` findings in words, then how many more."""
    shown = "; ".join(f.describe() for f in findings[:limit])
    return shown + (f"; and {len(findings) - limit} more" if len(findings) > limit else "")
