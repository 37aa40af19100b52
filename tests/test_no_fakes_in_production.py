"""No production module imports the development package (``devtools/``) or a fake.

The fakes, the webhook payload builders, the seed and the simulator live in ``devtools/``,
which only development and tests use (issue 15). Two checks keep it that way:

* statically, every ``import`` in the production packages (parsed with ``ast``, so an import
  inside a function counts too), and every ``importlib.import_module``/``__import__`` of a
  literal name;
* at run time, a fresh interpreter with DEBUG off imports the URLconf, the admin, every
  Celery task and every production module, and ``devtools`` must not be among its modules.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION_PACKAGES = ("conversations", "flows", "football_data_app", "meta_integration", "whatsappcrm_backend")
DEV_PACKAGE = "devtools"


def _forbidden(module: str) -> bool:
    """The development package, or any module whose name says it is a fake."""
    parts = module.split(".")
    return parts[0] == DEV_PACKAGE or any(part.startswith("fake") for part in parts)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def forbidden_imports(source: str, module: str, is_package: bool = False) -> list[str]:
    """``"line: name"`` for each import in ``source`` (the text of ``module``) of a forbidden module."""
    found: list[tuple[int, str]] = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing package
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names = [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id in {"import_module", "__import__"})
            )
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        bad = [name for name in names if _forbidden(name)]
        if bad:  # one per statement: ``from devtools import a, b`` is one import of devtools
            found.append((node.lineno, bad[0]))
    return [f"{line}: {name}" for line, name in sorted(found)]


def production_files() -> list[Path]:
    return sorted(path for package in PRODUCTION_PACKAGES for path in (ROOT / package).rglob("*.py"))


def test_the_static_check_sees_every_kind_of_import():
    """The checker itself: each way of importing the dev package or a fake is caught."""
    source = "\n".join([
        "import devtools",
        "import devtools.fake_graph as graph",
        "from devtools import webhook_payloads",
        "from devtools.seed import seed_flows",
        "def later():",
        "    from . import fake_feed",
        "    importlib.import_module('devtools.seed')",
        "    __import__('devtools')",
        "from meta_integration import payloads",  # allowed
        "import fakeredis",
    ])
    found = forbidden_imports(source, "football_data_app.services.catalogue")
    assert [line.split(":")[0] for line in found] == ["1", "2", "3", "4", "6", "7", "8", "10"]
    assert "6: football_data_app.services.fake_feed" in found


def test_no_production_module_imports_the_dev_package_or_a_fake():
    files = production_files()
    assert len(files) > 50, "the production packages were not found"
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in files
        if (found := forbidden_imports(path.read_text(), _module_name(path), path.name == "__init__.py"))
    }
    assert offenders == {}, f"production modules import development code: {offenders}"


def test_no_production_module_is_a_fake_or_a_dev_tool():
    """The fakes, the builders, the simulator and the seed moved to devtools/ and stay there."""
    misplaced = [
        str(path.relative_to(ROOT))
        for path in production_files()
        if path.stem.startswith(("fake", "simulat", "dev_seed", "devstack"))
        or (path.stem == "seed" and "services" in path.parts)
    ]
    assert misplaced == []


PROBE = f"""
import importlib, pkgutil, sys
import django
django.setup()
from django.conf import settings
assert not settings.DEBUG, "the probe must run as production does"
from django.urls import get_resolver
get_resolver().url_patterns  # the URLconf, and the admin through it
from django.contrib import admin
admin.autodiscover()
from whatsappcrm_backend.celery import app
app.loader.import_default_modules()  # every app's tasks
for name in {PRODUCTION_PACKAGES!r}:
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(package.__path__, name + "."):
        if ".migrations" not in info.name:
            importlib.import_module(info.name)
print(sorted(m for m in sys.modules if m.split(".")[0] == {DEV_PACKAGE!r} or ".fake" in m))
"""


def production_env() -> dict[str, str]:
    """What production needs set to start with DEBUG off; nothing is connected to."""
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_SETTINGS_MODULE"}}
    env.update(
        DEBUG="0",
        DJANGO_SETTINGS_MODULE="whatsappcrm_backend.settings",
        SECRET_KEY="p" * 64,
        METRICS_TOKEN="m" * 32,
        REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0"),  # never connected to here
        PYTHONPATH=str(ROOT),
    )
    return env


@pytest.mark.timeout(120)
def test_production_with_debug_off_loads_no_dev_module():
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=production_env(), capture_output=True, text=True, timeout=100
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
