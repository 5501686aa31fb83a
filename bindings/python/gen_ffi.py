#!/usr/bin/env python3
"""Writes ringraft/_ffi.py, the ctypes declarations of libringraft, from include/ringraft.h.

    python3 bindings/python/gen_ffi.py          rewrite ringraft/_ffi.py from the header
    python3 bindings/python/gen_ffi.py --check  exit 1 (with a diff) if it is out of date

The header is cbindgen's output, which is regular: one `#define NAME <integer>` per constant,
`typedef struct name { fields } name;` per struct, `typedef struct name name;` per opaque handle
and one prototype per function. That regularity is what this parser relies on; anything it does
not recognise (a new C type, a struct field of an unknown type) stops it with an error naming the
declaration, so a header change can never produce a silently wrong declaration.

For each C function the output has its ctypes restype/argtypes and a typed Python method of
`Functions` (positional-only, as ctypes calls are), so mypy checks every call the package makes:
which handle goes where (a ring view is not a client), what each out-parameter points to, how
many arguments there are and what comes back. tests/test_ffi_generated.py regenerates the file
and fails when the committed one differs.
"""

from __future__ import annotations

import argparse
import difflib
import keyword
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

HERE = Path(__file__).resolve().parent
HEADER = HERE.parents[1] / "include" / "ringraft.h"
OUTPUT = HERE / "ringraft" / "_ffi.py"

LINE_MAX = 100


class UnknownDeclaration(ValueError):
    """The header has a declaration this generator cannot map to ctypes."""


@dataclass(frozen=True)
class CType:
    """How one C type crosses into Python: the ctypes expression declared to ctypes, and the
    annotation of the Python value passed (or returned)."""

    ctypes: str
    annotation: str


@dataclass(frozen=True)
class Parameter:
    name: str
    c_type: str


@dataclass(frozen=True)
class Function:
    name: str
    returns: str
    parameters: Tuple[Parameter, ...]
    prototype: str


@dataclass(frozen=True)
class Field:
    name: str
    c_type: str
    length: Optional[str]


@dataclass(frozen=True)
class Header:
    defines: Tuple[Tuple[str, str], ...]
    byte_typedefs: Tuple[str, ...]
    handles: Tuple[str, ...]
    structs: Tuple[Tuple[str, Tuple[Field, ...]], ...]
    functions: Tuple[Function, ...]


def _without_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _normalise(c_type: str) -> str:
    """`const struct ringraft_node*` and `const  struct ringraft_node *` alike become
    `const struct ringraft_node *`; `**` becomes `* *`."""
    return re.sub(r"\s*\*", " *", " ".join(c_type.split())).strip()


def parse(header_text: str) -> Header:
    text = _without_comments(header_text)
    define = r"^#define (RINGRAFT_\w+)[ \t]+(\d+|UINT64_MAX)[ \t]*$"
    defines = tuple(re.findall(define, text, re.M))
    # The one-byte enums: `typedef uint8_t ringraft_member_role;` (the C < 23 spelling; the C23
    # one is an enum with uint8_t as its underlying type, the same layout).
    byte_typedefs = tuple(re.findall(r"typedef uint8_t (ringraft_\w+);", text))
    handles = tuple(re.findall(r"typedef struct (ringraft_\w+) \1;", text))
    structs = []
    for name, body in re.findall(r"typedef struct (ringraft_\w+) \{(.*?)\} \1;", text, re.S):
        fields = []
        for declaration in filter(None, (part.strip() for part in body.split(";"))):
            match = re.fullmatch(r"(.+?)\s*\b(\w+)(?:\[(\w+)\])?", " ".join(declaration.split()))
            if not match:
                raise UnknownDeclaration(f"cannot read the field {declaration!r} of {name}")
            c_type, field_name, length = match.groups()
            fields.append(Field(field_name, _normalise(c_type), length))
        structs.append((name, tuple(fields)))
    functions = []
    pattern = r"^([A-Za-z_][\w \t\*]*?)\b(ringraft_\w+)\s*\(([^;{()]*)\)\s*;"
    for match in re.finditer(pattern, text, re.S | re.M):
        returns, name, params = match.groups()
        parameters = []
        if params.strip() != "void":
            for param in params.split(","):
                param = " ".join(param.split())
                found = re.fullmatch(r"(.*?[\s\*])(\w+)", param)
                if not found:
                    raise UnknownDeclaration(f"cannot read the parameter {param!r} of {name}")
                parameters.append(Parameter(found.group(2), _normalise(found.group(1))))
        returns_text = " ".join(returns.split())
        space = "" if returns_text.endswith("*") else " "
        prototype = f"{returns_text}{space}{name}({' '.join(params.split())})"
        functions.append(Function(name, _normalise(returns), tuple(parameters), prototype))
    if not functions:
        raise UnknownDeclaration("no function prototypes found: is this ringraft.h?")
    # Without comments, every `ringraft_x(` is a prototype: one the pattern above did not read
    # (a function-pointer parameter, say) must stop the generator, not go missing.
    unread = set(re.findall(r"\b(ringraft_\w+)\s*\(", text)) - {f.name for f in functions}
    if unread:
        raise UnknownDeclaration(f"cannot read the prototype of {', '.join(sorted(unread))}")
    return Header(defines, byte_typedefs, handles, tuple(structs), tuple(functions))


def _camel(c_name: str) -> str:
    return "".join(part.capitalize() for part in c_name.split("_"))


def handle_class(c_name: str) -> str:
    """`ringraft_ring_view` -> `RingViewPtr`, the Python type of `struct ringraft_ring_view *`."""
    return _camel(c_name[len("ringraft_") :]) + "Ptr"


def struct_class(c_name: str) -> str:
    """`ringraft_cluster_info` -> `RingraftClusterInfo`."""
    return _camel(c_name)


_SCALARS = {
    "uint64_t": CType("c_uint64", "int"),
    "uint32_t": CType("c_uint32", "int"),
    "size_t": CType("c_size_t", "int"),
    "bool": CType("c_bool", "bool"),
    # The enum is returned (and taken) as its 32-bit value; _errors.Status names the values.
    "ringraft_status": CType("c_status", "int"),
    "enum ringraft_status": CType("c_status", "int"),
}

_POINTEES = {"uint64_t": "c_uint64", "size_t": "c_size_t"}


def c_type_of(c_type: str, header: Header, returned: bool) -> CType:
    """The ctypes declaration and Python annotation of a parameter (or return value) type."""
    bare = c_type.replace("const ", "")
    if bare in _SCALARS:
        return _SCALARS[bare]
    if bare == "void" and returned:
        return CType("None", "None")
    if bare == "char *":
        return CType("c_char_p", "Optional[bytes]")
    if bare == "uint8_t *":
        if returned:
            # Library memory, read with ctypes.string_at: a pointer, not a copy.
            return CType("POINTER(c_uint8)", "ctypes._Pointer[c_uint8]")
        # Keys and data: a c_char_p passes a bytes object's own buffer (no copy), and the
        # explicit length that follows carries embedded NULs.
        return CType("c_char_p", "Optional[bytes]")
    match = re.fullmatch(r"(\w+) \*", bare)
    if match and match.group(1) in _POINTEES:
        pointee = _POINTEES[match.group(1)]
        return CType(f"POINTER({pointee})", f"Optional[Out[{pointee}]]")
    match = re.fullmatch(r"struct (ringraft_\w+) \*", bare)
    if match and match.group(1) in header.handles:
        # A NULL handle is itself a handle (`ClientPtr()`), so no Optional.
        cls = handle_class(match.group(1))
        return CType(cls, cls)
    if match and match.group(1) in dict(header.structs):
        cls = struct_class(match.group(1))
        return CType(f"POINTER({cls})", f"Optional[Out[{cls}]]")
    match = re.fullmatch(r"struct (ringraft_\w+) \* \*", bare)
    if match and match.group(1) in header.handles:
        cls = handle_class(match.group(1))
        return CType(f"POINTER({cls})", f"Optional[Out[{cls}]]")
    where = "return type" if returned else "parameter type"
    raise UnknownDeclaration(f"no ctypes mapping for the {where} {c_type!r} (see gen_ffi.py)")


def field_ctype(field: Field, header: Header, struct: str) -> str:
    bare = field.c_type.replace("const ", "")
    simple = {
        "uint64_t": "c_uint64",
        "uint32_t": "c_uint32",
        "uint8_t": "c_uint8",
        "size_t": "c_size_t",
        "char": "c_char",
        # Library memory the bindings copy out with string_at: an untyped pointer.
        "uint8_t *": "c_void_p",
        "void *": "c_void_p",
    }
    if bare in simple:
        ctype = simple[bare]
    elif bare in header.byte_typedefs:
        ctype = "c_uint8"
    else:
        match = re.fullmatch(r"struct (ringraft_\w+) \*", bare)
        if not (match and match.group(1) in dict(header.structs)):
            raise UnknownDeclaration(
                f"no ctypes mapping for the field type {field.c_type!r} of {struct}.{field.name}"
            )
        ctype = f"POINTER({struct_class(match.group(1))})"
    if field.length is None:
        return ctype
    if not (field.length.isdigit() or field.length in dict(header.defines)):
        raise UnknownDeclaration(f"unknown array length {field.length} of {struct}.{field.name}")
    return f"{ctype} * {field.length}"


def _python_name(c_name: str) -> str:
    # `from` (ringraft_read_log) is a Python keyword.
    return c_name + "_" if keyword.iskeyword(c_name) else c_name


def _signature(head: str, parameters: List[str], tail: str, indent: str) -> List[str]:
    """`def name(a, b, /) -> R:` laid out as black would."""
    # Positional-only, as a ctypes call is: no caller can depend on the header's parameter names.
    slash = ["/"] if len(parameters) > 1 else []
    return _wrap(f"{indent}{head}(", parameters + slash, f"){tail}", indent)


def _wrap(head: str, items: List[str], tail: str, indent: str) -> List[str]:
    """`head` + items + `tail` on one line if it fits, else the items on one indented line, else
    one item per line: black's layout, so the output needs no formatter."""
    one_line = head + ", ".join(items) + tail
    if len(one_line) <= LINE_MAX:
        return [one_line + "\n"]
    inner = indent + "    " + ", ".join(items)
    if len(inner) <= LINE_MAX:
        return [head + "\n", inner + "\n", indent + tail + "\n"]
    return [head + "\n", *(f"{indent}    {item},\n" for item in items), indent + tail + "\n"]


def _declaration(name: str, returns: CType, params: List[CType]) -> List[str]:
    """The line(s) of Functions.__init__ that bind `name` and declare its types to ctypes."""
    head = f"        self._{name}: Callable[..., {returns.annotation}] = _declare("
    argtypes = [p.ctypes for p in params]
    items = ["cdll", f'"{name}"', returns.ctypes, f"[{', '.join(argtypes)}]"]
    lines = _wrap(head, items, ")", "        ")
    if all(len(line.rstrip("\n")) <= LINE_MAX for line in lines):
        return lines
    # The argtypes alone do not fit on a line: one per line.
    return [
        head + "\n",
        *(f"            {item},\n" for item in items[:3]),
        "            [\n",
        *(f"                {argtype},\n" for argtype in argtypes),
        "            ],\n",
        "        )\n",
    ]


def _docstring(prototype: str, indent: str) -> List[str]:
    """The C prototype as the method's docstring, wrapped at the line limit."""
    width = LINE_MAX - 1 - len(indent) - 6
    lines = textwrap.wrap(prototype, width, break_long_words=False)
    if len(lines) == 1:
        return [f'{indent}"""{lines[0]}"""\n']
    body = [f"{indent}{line}\n" for line in lines[1:]]
    return [f'{indent}"""{lines[0]}\n', *body, f'{indent}"""\n']


_PREAMBLE = '''\
"""The C functions and structs of libringraft, declared to ctypes and typed for mypy.

GENERATED by bindings/python/gen_ffi.py from include/ringraft.h; do not edit by hand: run
`python3 bindings/python/gen_ffi.py` after the header changes (tests/test_ffi_generated.py fails
until then).

Every call into the library goes through a method of `Functions`, whose parameters mirror the
prototype: handles are their own types (`ClientPtr`, `RingViewPtr`, `WatchPtr`; a NULL handle is
`ClientPtr()`), out-parameters are `byref(x)` of the right ctypes type (or an array of it), and
other pointers take None for NULL.
"""

from __future__ import annotations

import ctypes
from ctypes import (
    POINTER,
    Structure,
    c_bool,
    c_char,
    c_char_p,
    c_size_t,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)
from typing import TYPE_CHECKING, Any, Callable, Generic, Optional, Sequence, TypeVar, Union

if TYPE_CHECKING:
    from _ctypes import _CData

    _CT = TypeVar("_CT", bound=_CData)

    class Ref(Generic[_CT]):
        """What `byref(x)` gives for an `x` of type _CT. ctypes' own byref forgets the type, so
        under mypy this one keeps it: an out-parameter then takes only what it points to."""

    def byref(obj: _CT, /) -> Ref[_CT]: ...

    #: What a `T *` out-parameter accepts: byref of a T, an array of T, or a pointer to T.
    Out = Union[Ref[_CT], ctypes.Array[_CT], ctypes._Pointer[_CT]]
else:
    byref = ctypes.byref

#: The C enum ringraft_status crosses the ABI as a plain 32-bit value.
c_status = c_uint32
'''

_BINDER = """

def _declare(cdll: ctypes.CDLL, name: str, restype: Any, argtypes: Sequence[Any]) -> Any:
    # By name once, when the library is loaded; calls then go through the typed methods below.
    function = getattr(cdll, name)
    function.restype = restype
    function.argtypes = argtypes
    return function
"""


def _rule(title: str) -> str:
    return f"# -- {title} ".ljust(LINE_MAX - 1, "-")


def generate(header_text: str) -> str:
    """The text of ringraft/_ffi.py for this header."""
    header = parse(header_text)
    out: List[str] = [_PREAMBLE]

    out.append("\n" + _rule("constants (#define RINGRAFT_*)") + "\n")
    for name, value in header.defines:
        out.append(f"{name} = {'2**64 - 1' if value == 'UINT64_MAX' else value}\n")

    out.append("\n\n" + _rule("opaque handles") + "\n")
    for name in header.handles:
        out.append(
            f"\n\nclass {handle_class(name)}(c_void_p):\n"
            f'    """`struct {name} *`, a pointer the library handed out."""\n'
        )

    out.append("\n\n" + _rule("structs") + "\n")
    for name, fields in header.structs:
        out.append(f"\n\nclass {struct_class(name)}(Structure):\n")
        out.append(f'    """`struct {name}`."""\n\n')
        out.append("    _fields_ = [\n")
        for field in fields:
            out.append(f'        ("{field.name}", {field_ctype(field, header, name)}),\n')
        out.append("    ]\n")

    out.append("\n\n" + _rule("functions") + "\n")
    out.append(_BINDER)
    out.append(
        "\n\nclass Functions:\n"
        '    """Every function of include/ringraft.h, bound to one loaded library. Each method\n'
        "    calls the C function of its name with the header's types (declared to ctypes\n"
        '    below); its docstring is the prototype."""\n\n'
        "    def __init__(self, cdll: ctypes.CDLL) -> None:\n"
    )
    methods: List[str] = []
    for function in header.functions:
        returns = c_type_of(function.returns, header, returned=True)
        params = [c_type_of(p.c_type, header, returned=False) for p in function.parameters]
        out += _declaration(function.name, returns, params)
        names = [_python_name(p.name) for p in function.parameters]
        annotated = [f"{n}: {c.annotation}" for n, c in zip(names, params)]
        methods.append("\n")
        methods += _signature(
            f"def {function.name}", ["self", *annotated], f" -> {returns.annotation}:", "    "
        )
        methods += _docstring(function.prototype, "        ")
        methods += _wrap(f"        return self._{function.name}(", names, ")", "        ")
    out += methods
    return "".join(out)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    args = parser.parse_args(argv)
    expected = generate(HEADER.read_text())
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != expected:
            sys.stdout.writelines(drift(current, expected))
            print(f"{OUTPUT} is out of date: run python3 {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(expected)
    return 0


def drift(current: str, expected: str) -> List[str]:
    """A unified diff from the committed file to what the header gives."""
    return list(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            expected.splitlines(keepends=True),
            fromfile="ringraft/_ffi.py (committed)",
            tofile="ringraft/_ffi.py (generated from include/ringraft.h)",
        )
    )


if __name__ == "__main__":
    sys.exit(main())
