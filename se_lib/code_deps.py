"""Which source files of a package a Python script runs: its import closure, found statically with ``ast``.

The workflow declares the closure of each rule's ``script:`` as that rule's code inputs
(``workflow_script`` / ``script_code`` in rules/common.smk), so editing a module reruns exactly the jobs
whose scripts import it, directly or transitively, whatever the package layout. Computed when the
Snakefile is parsed, so this module imports only the standard library.

What counts as an import of ``se_lib`` (the default package):

* ``import se_lib.a.b`` and ``from se_lib.a.b import x`` anywhere in a file (module level, inside
  functions, ``try``/``if`` blocks), and relative imports (``from . import x``, ``from ..a import y``)
  inside the package;
* every package on the way: ``se_lib/__init__.py``, ``se_lib/a/__init__.py`` (Python runs them first);
* ``from se_lib.a import b`` where ``b`` is a submodule (``se_lib/a/b.py`` or a sub-package);
* ``from se_lib.a import name`` where ``se_lib/a/__init__.py`` exports ``name`` lazily (a module-level
  ``__getattr__``) and ``name`` is not defined there: every submodule of ``se_lib.a`` named by a string
  constant in that ``__init__.py`` (its lazy-export table), since any of them may be the one loaded.

Not seen: imports by names computed at run time other than such tables, and classes named in
configuration files (e.g. LightningCLI ``class_path:`` values); see :func:`config_class_modules`.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "ImportResolutionError",
    "config_class_modules",
    "import_closure",
    "import_graph",
    "module_closure",
    "module_file",
    "net_class_modules",
]


class ImportResolutionError(ValueError):
    """An import of the package names a module that does not exist (the message names file and line)."""


def module_file(name: str, root: Path) -> Path | None:
    """Source file of the dotted module ``name`` under ``root`` (``a/b.py`` or ``a/b/__init__.py``), or None."""
    parts = name.split(".")
    base = Path(root).joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _parents(name: str) -> list[str]:
    """``a.b.c`` -> ``[a, a.b, a.b.c]`` (importing a module first imports each package above it)."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _parse(path: Path) -> ast.Module:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        raise ImportResolutionError(f"{path}:{exc.lineno}: cannot parse: {exc.msg}") from exc


def _lazy_exports(init_file: Path, package: str, root: Path) -> set[str] | None:
    """Submodules named by string constants in a package ``__init__`` with a module-level ``__getattr__``.

    None when the package has no ``__getattr__`` (nothing is exported lazily).
    """
    tree = _parse(init_file)
    if not any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body):
        return None
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            name = node.value
            if name.startswith(package + ".") and module_file(name, root) is not None:
                found.add(name)
    return found


def _top_level_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _statements(node: ast.AST) -> Iterator[ast.stmt]:
    """Every statement in ``node``, nested ones included (function and class bodies, if/try/with/match blocks)."""
    for field in ("body", "orelse", "finalbody", "handlers", "cases"):
        for child in getattr(node, field, ()):
            if isinstance(child, ast.stmt):
                yield child
            yield from _statements(child)


def _imports_of(path: Path, module: str | None, is_package: bool, package: str, root: Path) -> dict[str, int]:
    """:func:`_imports_cached`, parsed again whenever the file changes (size or modification time)."""
    stat = Path(path).stat()
    return dict(_imports_cached(str(path), stat.st_mtime_ns, stat.st_size, module, is_package, package, str(root)))


@functools.lru_cache(maxsize=4096)
def _imports_cached(
    path: str, _mtime_ns: int, _size: int, module: str | None, is_package: bool, package: str, root: str
) -> dict[str, int]:
    """Modules of ``package`` the file at ``path`` imports, each with the line of its first import.

    ``module`` is the file's dotted name (None for a script outside the package). Each import counts as
    the most specific module it names: ``from p import sub`` imports ``p.sub`` when that is a module, else
    ``p`` itself (and ``p``'s lazy exports, see the module docstring). The packages above each module are
    implied (the closure adds them), not listed.
    """
    path, root = Path(path), Path(root)
    tree = _parse(path)
    found: dict[str, int] = {}

    def add(name: str, node: ast.stmt) -> None:
        if module_file(name, root) is None:
            raise ImportResolutionError(
                f"{path}:{node.lineno}: imports {name}, which is not a module under {Path(root) / package}"
            )
        found.setdefault(name, node.lineno)

    for node in _statements(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == package or alias.name.startswith(package + "."):
                    add(alias.name, node)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if module is None:
                    continue  # relative import in a top-level script: not into the package
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                if not base:
                    raise ImportResolutionError(f"{path}:{node.lineno}: relative import beyond the top package")
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not (target == package or target.startswith(package + ".")):
                continue
            target_file = module_file(target, root)
            if target_file is None:
                add(target, node)  # raises, naming the line
            lazy = defined = None
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if alias.name != "*" and module_file(sub, root) is not None:
                    add(sub, node)
                    continue
                add(target, node)
                if target_file.name == "__init__.py":
                    if lazy is None:
                        lazy = _lazy_exports(target_file, target, root) or set()
                        defined = _top_level_names(_parse(target_file)) if lazy else set()
                    if alias.name == "*" or alias.name not in defined:
                        for name in lazy:
                            add(name, node)
    return found


def import_graph(root: str | Path, package: str = "se_lib") -> dict[str, dict[str, int]]:
    """Every module of ``package`` -> the modules of the package it imports (anywhere in the file) -> line.

    The edges are the imports as written (most specific module, see :func:`_imports_of`); a module's
    import of its own name is left out.
    """
    root = Path(root)
    graph = {}
    for path in sorted((root / package).rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        name = _module_name(path, root)
        edges = _imports_of(path, name, path.name == "__init__.py", package, root)
        edges.pop(name, None)
        graph[name] = edges
    return graph


def import_closure(script: str | Path, root: str | Path, package: str = "se_lib") -> list[Path]:
    """Source files of ``package`` (under ``root``) that running ``script`` imports, directly or transitively.

    ``script`` may itself be a file of the package (its own file is then part of the result). Raises
    :class:`ImportResolutionError` naming the file and line of an import of a missing module.
    """
    root = Path(root)
    script = Path(script)
    if not script.is_file():
        raise FileNotFoundError(f"script {script} does not exist")
    try:
        script.resolve().relative_to((root / package).resolve())
    except ValueError:  # a script outside the package
        return module_closure(_imports_of(script, None, False, package, root), root, package)
    return module_closure([_module_name(script.resolve(), root.resolve())], root, package)


def module_closure(modules: Iterable[str], root: str | Path, package: str = "se_lib") -> list[Path]:
    """Source files of the dotted ``modules`` of ``package``, the packages above them and all they import."""
    root = Path(root)
    todo = {parent for name in modules for parent in _parents(name)}
    done: dict[str, Path] = {}
    while todo:
        name = todo.pop()
        path = module_file(name, root)
        if path is None:
            raise ImportResolutionError(f"module {name} does not exist under {root / package}")
        done[name] = path
        imported = _imports_of(path, name, path.name == "__init__.py", package, root)
        todo |= {parent for dep in imported for parent in _parents(dep)} - done.keys()
    return sorted(done.values())


_CLASS_PATH = re.compile(r"""^\s*-?\s*class_path:\s*["']?([A-Za-z_][\w.]*)""", re.MULTILINE)


def config_class_modules(config_files: Iterable[str | Path], root: str | Path, package: str = "se_lib") -> list[str]:
    """Modules of ``package`` holding the classes named by ``class_path:`` entries in YAML config files.

    For a LightningCLI config, ``class_path: se_lib.models.dprnn.DPRNN`` names module ``se_lib.models.dprnn``
    (all but the last dotted part). A ``class_path`` of the package whose module does not exist raises
    :class:`ImportResolutionError` naming the file.
    """
    modules = set()
    for cfg in config_files:
        text = Path(cfg).read_text(encoding="utf-8")
        for match in _CLASS_PATH.finditer(text):
            modules |= _class_module(match.group(1), cfg, root, package)
    return sorted(modules)


def _class_module(dotted: Any, cfg: str | Path, root: str | Path, package: str) -> set[str]:
    """``{module}`` of the class path ``dotted`` if it lies in ``package`` (checked to exist), else ``set()``."""
    if not isinstance(dotted, str) or not dotted.startswith(package + "."):
        return set()
    module = dotted.rpartition(".")[0]
    if module_file(module, root) is None:
        raise ImportResolutionError(f"{cfg}: class_path {dotted} names no module under {Path(root) / package}")
    return {module}


def net_class_modules(config_files: Iterable[str | Path], root: str | Path, package: str = "se_lib") -> list[str]:
    """Modules of ``package`` holding the network classes (``model.init_args.net.class_path``) of LightningCLI
    config files: all the predict job imports by name (it rebuilds the network from the checkpoint, whose
    ``net`` config the training took from these files; :mod:`se_lib.inference.checkpoint`)."""
    import yaml

    modules = set()
    for cfg in config_files:
        data = yaml.safe_load(Path(cfg).read_text(encoding="utf-8")) or {}
        net = ((data.get("model") or {}).get("init_args") or {}).get("net") if isinstance(data, dict) else None
        modules |= _class_module(net.get("class_path") if isinstance(net, dict) else None, cfg, root, package)
    return sorted(modules)
