"""pydist installs like a package, without the Makefile: `pip install .` of the repository and
of a built wheel give the three commands, and only pydist's own top-level packages.

The fresh virtualenv gets the dependencies from this test run's environment (a .pth line to
its site-packages) and pydist itself with `--no-deps`, so the test needs no index beyond what
`make test` already used to build (setuptools and wheel for the build backend)."""
from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OWN_TOP_LEVEL = {"pydist", "luaapi"}
DATA_FILES = ("pydist/console/help.txt", "pydist/web/dashboard/index.html", "luaapi/prelude.lua")


def pip(*args: str, timeout: float = 240) -> str:
    res = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                         capture_output=True, text=True, timeout=timeout, cwd=REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def fresh_venv(where: Path) -> tuple[Path, Path]:
    """A new virtualenv without pip (ours drives it) that sees our dependencies."""
    venv.EnvBuilder(with_pip=False).create(where)
    python = where / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig;print(sysconfig.get_paths()"
                              "['purelib'])"], capture_output=True, text=True,
                             check=True).stdout.strip()
    Path(purelib, "_deps_from_test_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python, Path(purelib)


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=cwd,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)})


def check_commands(prefix: Path, site: Path, tmp: Path) -> None:
    own = {p.name for p in site.iterdir() if not p.name.endswith((".dist-info", ".pth"))
           and p.name != "__pycache__"}
    assert own == OWN_TOP_LEVEL          # no generic top-level names such as `tools`
    version = run([str(prefix / "pydist"), "--version"], tmp)
    assert version.returncode == 0, version.stderr
    lines = version.stdout.splitlines()
    assert lines[0] == "dnsdist 1.7.3 (Lua 5.1.4 [LuaJIT 2.1.0-beta3])"
    assert lines[2].startswith("pydist ")
    key = run([str(prefix / "pydist-key")], tmp)
    assert key.returncode == 0 and key.stdout.startswith('setKey("'), key.stderr
    compare = run([str(prefix / "pydist-compare"), "--help"], tmp)
    assert compare.returncode == 0 and "usage: pydist-compare" in compare.stdout, compare.stderr
    bench = run([str(prefix / "pydist-test"), "--help"], tmp)
    assert bench.returncode == 0 and "usage: pydist-test" in bench.stdout, bench.stderr
    where = run([str(prefix / "python"), "-c", "import pydist.cli, luaapi; "
                 "print(pydist.cli.__file__); print(luaapi.__file__)"], tmp)
    assert all(line.startswith(str(site)) for line in where.stdout.split()), where.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    pip("wheel", "--no-deps", "-q", "-w", str(out), str(REPO))
    (built,) = out.glob("pydist-*.whl")
    return built


def test_wheel_holds_only_pydist_packages_and_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == OWN_TOP_LEVEL
    for data in DATA_FILES:
        assert data in names
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "pydist-key = pydist.keytool:main" in entry_points
    assert "pydist-test = pydist.testbench.cli:main" in entry_points


def test_pip_install_of_the_wheel(wheel: Path, tmp_path: Path) -> None:
    python, site = fresh_venv(tmp_path / "venv")
    pip("--python", str(python), "install", "-q", "--no-deps", str(wheel))
    check_commands(python.parent, site, tmp_path)


def test_pip_install_of_the_repository(tmp_path: Path) -> None:
    python, site = fresh_venv(tmp_path / "venv")
    pip("--python", str(python), "install", "-q", "--no-deps", str(REPO))
    check_commands(python.parent, site, tmp_path)
