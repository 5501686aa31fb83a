"""Checking and converting Python arguments before they cross into C.

ctypes silently wraps integers that do not fit (-1 becomes 2**64-1), so every number is
range-checked here; wrong types raise TypeError, out-of-range values InvalidArgument.
"""

from __future__ import annotations

import datetime
import math
import operator
from typing import Optional, Union

from ._errors import InvalidArgument
from ._types import Key

U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1

#: A duration in seconds, or a timedelta.
Seconds = Union[int, float, datetime.timedelta]


def key_bytes(key: Key, what: str = "key") -> bytes:
    """The bytes of a key: bytes-like objects as they are, str encoded as UTF-8."""
    if isinstance(key, bytes):
        return key
    if isinstance(key, str):
        try:
            return key.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InvalidArgument(f"{what} is not encodable as UTF-8: {error}") from None
    if isinstance(key, (bytearray, memoryview)):
        return bytes(key)
    raise TypeError(f"{what} must be bytes or str, not {type(key).__name__}")


def integer(value: int, what: str, maximum: int) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an integer, not bool")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an integer, not {type(value).__name__}") from None
    if not 0 <= number <= maximum:
        raise InvalidArgument(f"{what} must be between 0 and {maximum}, not {number}")
    return number


def u64(value: int, what: str) -> int:
    return integer(value, what, U64_MAX)


def u32(value: int, what: str) -> int:
    return integer(value, what, U32_MAX)


def text(value: str, what: str) -> bytes:
    """A str as the NUL-terminated UTF-8 the C API takes."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, not {type(value).__name__}")
    if "\0" in value:
        raise InvalidArgument(f"{what} contains a NUL character")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidArgument(f"{what} is not encodable as UTF-8: {error}") from None


def milliseconds(seconds: Optional[Seconds], what: str) -> int:
    """A positive duration as whole milliseconds (rounded up, so 0.0001 s does not become 0)."""
    if seconds is None:
        raise TypeError(f"{what} must be a number of seconds, not None")
    if isinstance(seconds, datetime.timedelta):
        seconds = seconds.total_seconds()
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, not {type(seconds).__name__}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidArgument(f"{what} must be a positive number of seconds, not {seconds}")
    millis = math.ceil(seconds * 1000)
    if millis > U32_MAX:
        raise InvalidArgument(f"{what} is too long: at most {U32_MAX / 1000:.0f} seconds")
    return millis
