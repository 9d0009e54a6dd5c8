"""The layers of docs/architecture.md, checked over the imports of every module.

- `runner.spec` and `runner.reconcile.plan` import no backend, engine, CLI or I/O module;
- only `runner.cli` itself and the entry point `runner.__main__` import `runner.cli`;
- `runner.backends` and `runner.engine` never import `runner.cli` (covered by the above).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

RUNNER = Path(__file__).resolve().parent.parent / "runner"

FORBIDDEN_IN_PURE = (
    "runner.backends",
    "runner.engine",
    "runner.cli",
    "runner.jobsdir",
    "runner.reports",
    "os",
    "io",
    "pathlib",
    "shutil",
    "tempfile",
    "socket",
    "subprocess",
    "sqlite3",
    "http",
    "urllib",
    "boto3",
    "botocore",
    "requests",
    "fcntl",
    "glob",
)
PURE_MODULES = ("runner.spec", "runner.reconcile.plan")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(RUNNER.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, is_package: bool) -> set[str]:
    """Absolute names of every module ``source`` imports (relative imports resolved)."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(module: str, imported: set[str]) -> list[str]:
    """Layer rules broken by ``module`` importing ``imported``."""
    broken = []
    if any(_matches(module, pure) for pure in PURE_MODULES):
        broken += [
            f"{module} imports {name}"
            for name in sorted(imported)
            if any(_matches(name, bad) for bad in FORBIDDEN_IN_PURE)
        ]
    if not _matches(module, "runner.cli") and module != "runner.__main__":
        broken += [
            f"{module} imports {name}" for name in sorted(imported) if _matches(name, "runner.cli")
        ]
    return broken


def test_layers_hold() -> None:
    broken = []
    for path in sorted(RUNNER.rglob("*.py")):
        module = module_name(path)
        source = path.read_text(encoding="utf-8")
        broken += violations(module, imports_of(source, module, path.name == "__init__.py"))
    assert broken == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("runner.spec.models", "import os\n", "runner.spec.models imports os"),
        ("runner.spec.models", "from pathlib import Path\n", "imports pathlib"),
        ("runner.spec.loader", "from ..engine import store\n", "imports runner.engine"),
        ("runner.reconcile.plan", "from runner.backends import local\n", "imports runner.backends"),
        ("runner.engine.store", "from runner.cli.app import app\n", "imports runner.cli"),
    ],
)
def test_the_check_catches_crossings(module: str, source: str, expected: str) -> None:
    found = violations(module, imports_of(source, module, False))
    assert any(expected in v for v in found), found


def test_commands_that_never_touch_a_cloud_do_not_load_boto3() -> None:
    """boto3 and botocore cost ~0.3 s at start-up (bench/startup.py): only what uses them
    loads them (a state in a bucket, an aws target, engine serve)."""
    import subprocess
    import sys

    probe = (
        "import sys, runner.cli; "
        "print(sorted(m for m in ('boto3', 'botocore', 'runner.serve.server') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=RUNNER.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.strip() == "[]"
