"""mypy (the strict configuration of pyproject.toml) passes on the package, and it does check
the calls into C: misuse of the typed declarations of _ffi.py is an error."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Shared by the runs of this module (the second is then quick), and never in the tree.
    return tmp_path_factory.mktemp("mypy-cache")


def run_mypy(cache: Path, *files: str) -> subprocess.CompletedProcess:
    # From the package root: pyproject.toml's [tool.mypy] (strict, files = ringraft) applies.
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(cache), *files],
        cwd=PACKAGE_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_mypy_strict_passes_on_the_package(mypy_cache: Path) -> None:
    result = run_mypy(mypy_cache)
    assert result.returncode == 0, result.stdout + result.stderr


MISUSES = {
    "a ring view passed as a client": (
        "lib.ringraft_owner(view, b'k', 1, byref(node))",
        'Argument 1 to "ringraft_owner" of "Functions" has incompatible type "RingViewPtr"',
    ),
    "an out-parameter left out": (
        "lib.ringraft_owner(client, b'k', 1)",
        'Too few arguments for "ringraft_owner"',
    ),
    "a uint64_t where a size_t * is wanted": (
        "lib.ringraft_ring_view_members(view, None, 0, byref(ctypes.c_uint64(0)))",
        'Argument 1 to "byref" has incompatible type "c_uint64"; expected "c_size_t"',
    ),
    "the wrong struct for an out-parameter": (
        "lib.ringraft_owner(client, b'k', 1, byref(_lib.RingraftClusterInfo()))",
        'incompatible type "RingraftClusterInfo"; expected "RingraftNode"',
    ),
    "a status taken for a string": (
        "text: str = lib.ringraft_owner(client, b'k', 1, byref(node))",
        'expression has type "int", variable has type "str"',
    ),
}


def test_mypy_rejects_misuse_of_the_c_functions(mypy_cache: Path, tmp_path: Path) -> None:
    lines = [
        "import ctypes",
        "from ringraft import _lib",
        "from ringraft._lib import byref",
        "",
        "def misuse(lib: _lib.Library, client: _lib.ClientPtr, view: _lib.RingViewPtr) -> None:",
        "    node = _lib.RingraftNode()",
    ]
    first_line = len(lines) + 1
    lines += ["    " + call for call, _ in MISUSES.values()]
    probe = tmp_path / "misuse.py"
    probe.write_text("\n".join(lines) + "\n")
    result = run_mypy(mypy_cache, str(probe))
    assert result.returncode == 1, result.stdout + result.stderr
    for line, (what, (_, message)) in enumerate(MISUSES.items(), start=first_line):
        reported = [out for out in result.stdout.splitlines() if f"misuse.py:{line}:" in out]
        assert any(message in out for out in reported), (
            f"mypy did not catch {what} on line {line}:\n{textwrap.indent(result.stdout, '  ')}"
        )
