"""ringraft/_ffi.py is what bindings/python/gen_ffi.py makes of include/ringraft.h, and the
generator refuses what it cannot map rather than guessing."""

from __future__ import annotations

import ctypes
from typing import Any, Dict, List, Tuple

import pytest

import gen_ffi

from .conftest import REPO

HEADER = REPO / "include" / "ringraft.h"
GENERATED = REPO / "bindings" / "python" / "ringraft" / "_ffi.py"


def test_the_committed_ffi_module_is_what_the_header_generates() -> None:
    expected = gen_ffi.generate(HEADER.read_text())
    committed = GENERATED.read_text()
    if committed != expected:
        pytest.fail(
            f"{GENERATED} differs from what include/ringraft.h generates; run "
            "`python3 bindings/python/gen_ffi.py` and commit the result:\n"
            + "".join(gen_ffi.drift(committed, expected)),
            pytrace=False,
        )


def test_every_header_function_gets_a_typed_wrapper() -> None:
    header = gen_ffi.parse(HEADER.read_text())
    generated = GENERATED.read_text()
    assert len(header.functions) >= 30
    for function in header.functions:
        assert f"    def {function.name}(" in generated, function.name


class RecordingFunction:
    """Stands in for a ctypes function: keeps the declared types and the calls."""

    def __init__(self) -> None:
        self.restype: object = "undeclared"
        self.argtypes: object = "undeclared"
        self.calls: List[Tuple[object, ...]] = []

    def __call__(self, *args: object) -> int:
        self.calls.append(args)
        return 7


class RecordingLibrary:
    """Stands in for a ctypes.CDLL: every symbol exists and records."""

    def __init__(self) -> None:
        self.functions: Dict[str, RecordingFunction] = {}

    def __getattr__(self, name: str) -> RecordingFunction:
        return self.functions.setdefault(name, RecordingFunction())


def test_a_function_added_to_the_header_is_declared_and_callable() -> None:
    added = "enum ringraft_status ringraft_ping(struct ringraft_client *client, uint64_t *rtt_us);"
    anchor = "void ringraft_close(struct ringraft_client *client);"
    assert anchor in HEADER.read_text()
    header = HEADER.read_text().replace(anchor, anchor + "\n" + added)
    module: Dict[str, Any] = {}
    exec(compile(gen_ffi.generate(header), "generated _ffi.py", "exec"), module)
    library = RecordingLibrary()
    functions = module["Functions"](library)
    ping = library.functions["ringraft_ping"]
    assert ping.restype is ctypes.c_uint32
    assert ping.argtypes == [module["ClientPtr"], ctypes.POINTER(ctypes.c_uint64)]
    client = module["ClientPtr"]()
    assert functions.ringraft_ping(client, None) == 7
    assert ping.calls == [(client, None)]


@pytest.mark.parametrize(
    "declaration, complaint",
    [
        # A C type no rule covers: a guess here would pass garbage to C.
        (
            "enum ringraft_status ringraft_new(struct ringraft_client *client, double weight);",
            "'double'",
        ),
        ("float ringraft_new(struct ringraft_client *client);", "return type 'float'"),
        ("enum ringraft_status ringraft_new(struct ringraft_unknown *thing);", "ringraft_unknown"),
        # A prototype the parser cannot read must not go missing from the output.
        (
            "enum ringraft_status ringraft_new(void (*callback)(uint64_t index));",
            "cannot read the prototype of ringraft_new",
        ),
    ],
)
def test_an_unknown_c_type_stops_the_generator(declaration: str, complaint: str) -> None:
    header = HEADER.read_text().replace("#endif  /* RINGRAFT_H */", declaration + "\n#endif")
    with pytest.raises(gen_ffi.UnknownDeclaration, match=complaint):
        gen_ffi.generate(header)


def test_a_struct_field_of_an_unknown_type_stops_the_generator() -> None:
    field = "  uint64_t epoch;\n} ringraft_kv_entry;"
    assert field in HEADER.read_text()
    header = HEADER.read_text().replace(field, "  float epoch;\n} ringraft_kv_entry;")
    with pytest.raises(gen_ffi.UnknownDeclaration, match="ringraft_kv_entry.epoch"):
        gen_ffi.generate(header)
