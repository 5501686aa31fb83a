"""The bindings against the header: every status value, enum and size, the exception mapping,
and how the library is found."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest

import ringraft
from ringraft import _ffi, _lib

from .conftest import LIBRARY, REPO

HEADER = REPO / "include" / "ringraft.h"
PACKAGE_DIR = Path(ringraft.__file__).resolve().parent


def header_enum(name: str) -> Dict[str, int]:
    """NAME = value pairs of `enum <name> { ... }` in the header."""
    text = HEADER.read_text()
    match = re.search(r"enum " + re.escape(name) + r"\b[^{]*\{(.*?)\}", text, re.S)
    assert match, f"enum {name} not found in {HEADER}"
    body = re.sub(r"/\*.*?\*/", "", match.group(1), flags=re.S)
    return {key: int(value) for key, value in re.findall(r"(RINGRAFT_\w+)\s*=\s*(\d+)", body)}


def header_define(name: str) -> int:
    match = re.search(r"#define " + re.escape(name) + r"\s+(\d+)", HEADER.read_text())
    assert match, f"#define {name} not found"
    return int(match.group(1))


def test_status_mirrors_the_header_exactly() -> None:
    in_header = header_enum("ringraft_status")
    assert len(in_header) >= 20
    # The newest value: a daemon whose node was removed from the cluster.
    assert in_header["RINGRAFT_REMOVED"] == 19
    in_python = {f"RINGRAFT_{status.name}": status.value for status in ringraft.Status}
    assert in_python == in_header


@pytest.mark.parametrize(
    "enum_name, python_enum, prefix",
    [
        ("ringraft_node_role", ringraft.NodeRole, "RINGRAFT_NODE_"),
        ("ringraft_member_role", ringraft.MemberRole, "RINGRAFT_ROLE_"),
        ("ringraft_member_state", ringraft.MemberState, "RINGRAFT_STATE_"),
    ],
)
def test_value_enums_mirror_the_header(enum_name, python_enum, prefix) -> None:
    assert {prefix + member.name: member.value for member in python_enum} == header_enum(enum_name)


def test_struct_layouts_and_limits_match_the_header() -> None:
    assert ctypes.sizeof(_lib.RingraftNode) == 592
    assert ctypes.sizeof(_lib.RingraftClusterInfo) == 176
    assert ctypes.sizeof(_lib.RingraftKvEntry) == 2 * ctypes.sizeof(ctypes.c_void_p) + 16
    assert _lib.NAME_MAX == header_define("RINGRAFT_NAME_MAX")
    assert _lib.ADDRESS_MAX == header_define("RINGRAFT_ADDRESS_MAX")
    assert _lib.ZONE_MAX == header_define("RINGRAFT_ZONE_MAX")
    assert _lib.VERSION_STRING_MAX == header_define("RINGRAFT_VERSION_STRING_MAX")
    assert _lib.NODE_TRUNCATED == header_define("RINGRAFT_NODE_TRUNCATED")
    assert _lib.SUPPORTED_MAJOR == header_define("RINGRAFT_VERSION_MAJOR")
    assert re.search(r"#define RINGRAFT_KV_ANY_VERSION\s+UINT64_MAX\b", HEADER.read_text())
    assert _lib.KV_ANY_VERSION == 2**64 - 1


def header_structs() -> Dict[str, list]:
    """name: [(C type, field name, array length or None)] of every struct the header defines."""
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    structs = {}
    for name, body in re.findall(r"typedef struct (ringraft_\w+) \{(.*?)\} \1;", text, re.S):
        fields = []
        for declaration in filter(None, (part.strip() for part in body.split(";"))):
            match = re.fullmatch(r"(.+?)\s*\b(\w+)(?:\[(\w+)\])?", " ".join(declaration.split()))
            assert match, f"cannot read the field {declaration!r} of {name}"
            c_type, field_name, length = match.groups()
            fields.append((re.sub(r"\s*\*", " *", c_type).strip(), field_name, length))
        structs[name] = fields
    return structs


# How each struct of the header is declared to ctypes, and each field type.
_CTYPES_STRUCTS = {
    "ringraft_node": _ffi.RingraftNode,
    "ringraft_cluster_info": _ffi.RingraftClusterInfo,
    "ringraft_log_record": _ffi.RingraftLogRecord,
    "ringraft_log_batch": _ffi.RingraftLogBatch,
    "ringraft_kv_entry": _ffi.RingraftKvEntry,
}
_FIELD_TYPES = {
    "uint64_t": ctypes.c_uint64,
    "uint32_t": ctypes.c_uint32,
    "uint8_t": ctypes.c_uint8,
    "size_t": ctypes.c_size_t,
    "char": ctypes.c_char,
    # The one-byte enums are typedefs of uint8_t in the header.
    "ringraft_node_role": ctypes.c_uint8,
    "ringraft_member_role": ctypes.c_uint8,
    "ringraft_member_state": ctypes.c_uint8,
    # Library memory is read with string_at: an untyped pointer.
    "const uint8_t *": ctypes.c_void_p,
    "uint8_t *": ctypes.c_void_p,
    "void *": ctypes.c_void_p,
    "const struct ringraft_log_record *": ctypes.POINTER(_ffi.RingraftLogRecord),
}


def test_every_header_struct_has_its_ctypes_layout_field_for_field() -> None:
    in_header = header_structs()
    assert set(in_header) == set(_CTYPES_STRUCTS), sorted(in_header)
    for name, fields in in_header.items():
        declared = _CTYPES_STRUCTS[name]._fields_
        assert [field for field, _ in declared] == [field for _, field, _ in fields], name
        for (field, ctype), (c_type, _, length) in zip(declared, fields):
            expected = _FIELD_TYPES[c_type]
            if length is not None:
                expected = expected * (int(length) if length.isdigit() else header_define(length))
                assert (ctype._type_, ctype._length_) == (expected._type_, expected._length_), (
                    f"{name}.{field}: {ctype} is not {c_type}[{length}]"
                )
            else:
                assert ctype == expected, f"{name}.{field}: {ctype} is not {c_type}"


def test_library_version_matches_the_header() -> None:
    expected = ".".join(
        str(header_define(f"RINGRAFT_VERSION_{part}")) for part in ("MAJOR", "MINOR", "PATCH")
    )
    assert ringraft.library_version() == expected


def test_every_error_status_has_its_exception_class() -> None:
    for status in ringraft.Status:
        if status is ringraft.Status.OK:
            continue
        error = ringraft._errors.error_for(status, "a message")
        assert type(error) is not ringraft.RingraftError, status
        assert isinstance(error, ringraft.RingraftError)
        assert error.status is status
        assert str(error) == "a message"
        # Class names are the status names in CamelCase.
        assert type(error).__name__.upper() == status.name.replace("_", "")
        assert getattr(ringraft, type(error).__name__) is type(error)


@pytest.mark.parametrize(
    "status, builtin",
    [
        (ringraft.Status.INVALID_ARGUMENT, ValueError),
        (ringraft.Status.TOO_LARGE, ValueError),
        (ringraft.Status.TIMEOUT, TimeoutError),
        (ringraft.Status.PERMISSION_DENIED, PermissionError),
        (ringraft.Status.UNAVAILABLE, ConnectionError),
        (ringraft.Status.SHUTTING_DOWN, ConnectionError),
        (ringraft.Status.NOT_FOUND, KeyError),
        (ringraft.Status.COMPACTED, LookupError),
    ],
)
def test_errors_reuse_builtin_exceptions(status, builtin) -> None:
    assert isinstance(ringraft._errors.error_for(status, "m"), builtin)


def test_unknown_status_from_a_newer_library_is_a_plain_error() -> None:
    error = ringraft._errors.error_for(4000, "")
    assert type(error) is ringraft.RingraftError
    assert error.status == 4000
    assert "4000" in str(error)


def test_strerror_comes_from_the_library() -> None:
    assert ringraft.strerror(ringraft.Status.UNAVAILABLE) == "daemon unavailable"
    assert ringraft.strerror(4000) == "unknown status"


def _import_in_subprocess(env: Dict[str, str], pythonpath: Path) -> subprocess.CompletedProcess:
    env = {**env, "PYTHONPATH": str(pythonpath)}
    code = (
        "import ringraft\n"
        "try:\n"
        "    print('LOADED', ringraft.library_path())\n"
        "except ringraft.LibraryNotFoundError as error:\n"
        "    print('NOTFOUND', error)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    """This package copied to a fresh directory, without any library inside."""
    target = tmp_path / "ringraft"
    shutil.copytree(
        PACKAGE_DIR, target, ignore=shutil.ignore_patterns("libringraft.so*", "__pycache__")
    )
    return tmp_path


def _env_without_lib() -> Dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "RINGRAFT_LIB"}


def test_ringraft_lib_comes_first(package_copy: Path) -> None:
    shutil.copy(LIBRARY, package_copy / "ringraft" / "libringraft.so.0")
    other = package_copy / "elsewhere" / "libringraft.so"
    other.parent.mkdir()
    shutil.copy(LIBRARY, other)
    result = _import_in_subprocess({**_env_without_lib(), "RINGRAFT_LIB": str(other)}, package_copy)
    assert result.stdout.strip() == f"LOADED {other}", result.stderr


def test_a_bad_ringraft_lib_is_an_error_not_a_fallback(package_copy: Path) -> None:
    shutil.copy(LIBRARY, package_copy / "ringraft" / "libringraft.so.0")
    missing = package_copy / "no-such-libringraft.so"
    result = _import_in_subprocess(
        {**_env_without_lib(), "RINGRAFT_LIB": str(missing)}, package_copy
    )
    assert result.stdout.startswith("NOTFOUND"), result.stdout + result.stderr
    assert str(missing) in result.stdout


def test_the_package_copy_comes_before_the_system(package_copy: Path) -> None:
    copy = package_copy / "ringraft" / "libringraft.so.0"
    shutil.copy(LIBRARY, copy)
    result = _import_in_subprocess(_env_without_lib(), package_copy)
    assert result.stdout.strip() == f"LOADED {copy}", result.stderr


def test_without_a_copy_the_system_library_is_tried(package_copy: Path) -> None:
    result = _import_in_subprocess(_env_without_lib(), package_copy)
    if ctypes.util.find_library("ringraft") is None:
        # Nothing installed system-wide here: the error names every place it looked.
        assert result.stdout.startswith("NOTFOUND"), result.stdout + result.stderr
        assert "libringraft.so.0" in result.stdout
        assert "RINGRAFT_LIB" in result.stdout
    else:
        assert result.stdout.startswith("LOADED"), result.stdout + result.stderr
        assert str(package_copy) not in result.stdout


def header_functions() -> Dict[str, tuple]:
    """name: (return type, [parameter types]) of every function the header declares, with
    comments and parameter names dropped and whitespace normalised."""
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    functions = {}
    pattern = r"([A-Za-z_][\w \t\*]*?)\b(ringraft_\w+)\s*\(([^;{]*?)\)\s*;"
    for match in re.finditer(pattern, text, re.S):
        ret, name, params = match.groups()
        types = []
        if params.strip() != "void":
            for param in params.split(","):
                # Drop the parameter's name: the last identifier.
                c_type = re.sub(r"\b\w+\s*$", "", " ".join(param.split())).strip()
                types.append(re.sub(r"\s*\*", " *", c_type).strip())
        functions[name] = (" ".join(ret.split()), types)
    return functions


# How each C type of the header is declared to ctypes: a second reading of the header,
# independent of gen_ffi.py's. Keys and data (const uint8_t *) are declared c_char_p on purpose
# (ctypes passes a bytes object's own buffer); a return value of that type is not.
_STRUCTS = {
    "struct ringraft_node *": ctypes.POINTER(_ffi.RingraftNode),
    "struct ringraft_log_batch *": ctypes.POINTER(_ffi.RingraftLogBatch),
    "struct ringraft_cluster_info *": ctypes.POINTER(_ffi.RingraftClusterInfo),
    "struct ringraft_kv_entry *": ctypes.POINTER(_ffi.RingraftKvEntry),
}
# Each opaque handle is its own c_void_p subclass, so mypy tells a ring view from a client.
_HANDLES = {
    "client": _ffi.ClientPtr,
    "ring_view": _ffi.RingViewPtr,
    "watch": _ffi.WatchPtr,
}


def ctypes_of(c_type: str, returned: bool = False):
    c_type = c_type.replace("const ", "")
    scalars = {
        "void": None,
        "enum ringraft_status": ctypes.c_uint32,
        "ringraft_status": ctypes.c_uint32,
        "uint64_t": ctypes.c_uint64,
        "uint32_t": ctypes.c_uint32,
        "size_t": ctypes.c_size_t,
        "bool": ctypes.c_bool,
        "char *": ctypes.c_char_p,
        "uint64_t *": ctypes.POINTER(ctypes.c_uint64),
        "size_t *": ctypes.POINTER(ctypes.c_size_t),
    }
    if c_type in scalars:
        return scalars[c_type]
    if c_type == "uint8_t *":
        return ctypes.POINTER(ctypes.c_uint8) if returned else ctypes.c_char_p
    if c_type in _STRUCTS:
        return _STRUCTS[c_type]
    # Opaque handles and the out-pointers that receive them.
    handle = re.fullmatch(r"struct ringraft_(client|watch|ring_view) \*( \*)?", c_type)
    if handle:
        cls = _HANDLES[handle.group(1)]
        return ctypes.POINTER(cls) if handle.group(2) else cls
    raise AssertionError(f"no ctypes mapping for the header's C type {c_type!r}")


def test_every_header_function_is_declared_with_the_headers_types() -> None:
    in_header = header_functions()
    assert len(in_header) >= 30, sorted(in_header)
    assert set(_lib.FUNCTION_NAMES) == set(in_header), (
        f"only in the header: {sorted(set(in_header) - set(_lib.FUNCTION_NAMES))}; "
        f"only in Python: {sorted(set(_lib.FUNCTION_NAMES) - set(in_header))}"
    )
    lib = _lib.load()
    for name, (ret, params) in in_header.items():
        # What the loaded library's function object was actually given, not a table about it.
        bound = getattr(lib, "_" + name)
        assert bound.restype == ctypes_of(ret, returned=True), f"{name} returns {ret}"
        expected = [ctypes_of(param) for param in params]
        assert list(bound.argtypes) == expected, f"{name}({', '.join(params)}): {bound.argtypes}"
        # One typed wrapper per function, taking the prototype's parameters.
        wrapper = getattr(_ffi.Functions, name)
        assert wrapper.__code__.co_argcount == 1 + len(params), name
