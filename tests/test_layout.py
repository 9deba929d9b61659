"""The repository's shape: layout, pinned dependencies, vendored front-end files."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: no database here

ROOT = Path(__file__).resolve().parent.parent


def test_top_level_layout():
    for name in ("portal", "hotfolder_agent", "shared", "templates", "static", "tests"):
        assert (ROOT / name).is_dir(), name
    for name in ("client.ini.example", "pyproject.toml", "README.md", ".ci/run"):
        assert (ROOT / name).is_file(), name


def test_every_dependency_is_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    for requirement in requirements:
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[a-z,]+\])?==[0-9][\w.]*", requirement), (
            requirement
        )
    names = {re.split(r"[=\[]", r)[0].lower() for r in requirements}
    for needed in (
        "flask",
        "flask-login",
        "flask-htmx",
        "argon2-cffi",
        "watchdog",
        "pyclamd",
        "peewee",
        "flask-wtf",
        "flask-babel",
        "flask-limiter",
        "huey",
    ):
        assert needed in names, needed
    assert project["scripts"]["ptportal"] == "portal.cli:main"


def test_htmx_2_is_vendored_with_its_licence():
    folders = list((ROOT / "static" / "vendor").glob("htmx-*"))
    assert [f.name for f in folders] == ["htmx-2.0.11"]
    script = (folders[0] / "htmx.min.js").read_text()
    assert 'version:"2.0.11"' in script.replace(" ", "")
    assert (
        "BSD" in (folders[0] / "LICENSE").read_text()
        or "Zero-Clause" in (folders[0] / "LICENSE").read_text()
    )


def test_pages_load_no_external_assets():
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"(src|href)=\"(https?:)?//", text), template


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "bash .ci/test" in readme and "bash .ci/demo" in readme
    assert ".ci/test" in (ROOT / ".ci" / "run").read_text()


def test_architecture_contracts_hold():
    # The contracts live in pyproject.toml ([tool.importlinter]); a broken one fails here.
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_test_modules_do_not_import_each_other():
    # Shared fixtures and helpers go to conftest.py or a *_helpers.py module.
    for module in (ROOT / "tests").glob("*.py"):
        imported = re.findall(r"^\s*(?:from|import) (test_\w+)", module.read_text(), re.M)
        assert not imported, f"{module.name} imports {imported}"
