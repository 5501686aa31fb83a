"""The wheel's tag. Everything else is in pyproject.toml.

With a libringraft.so* inside ringraft/ (build-wheel.sh puts the release library there), the
wheel is platform-specific: `py3-none-<platform>`, any Python 3 (the library is loaded with
ctypes, it is not an extension module) on one platform, the one in RINGRAFT_WHEEL_PLATFORM
(build-wheel.sh derives a manylinux tag from the library's glibc needs) or else the build
machine's (`linux_x86_64`). Without a bundled library the wheel stays pure (`py3-none-any`) and
the package uses the system's libringraft.
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

from setuptools import Distribution, setup

try:  # setuptools >= 70.1
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # older setuptools, with the wheel package
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
BUNDLED = sorted((HERE / "ringraft").glob("libringraft.so*"))


class BundledLibraryDistribution(Distribution):
    """A bundled library makes the distribution binary: installed to platlib, not pure."""

    def has_ext_modules(self) -> bool:
        return bool(BUNDLED)


class PlatformWheel(bdist_wheel):  # type: ignore[misc]
    def get_tag(self) -> tuple[str, str, str]:
        if not BUNDLED:
            return super().get_tag()  # type: ignore[no-any-return]
        platform = os.environ.get("RINGRAFT_WHEEL_PLATFORM") or sysconfig.get_platform()
        return "py3", "none", platform.replace("-", "_").replace(".", "_")


setup(distclass=BundledLibraryDistribution, cmdclass={"bdist_wheel": PlatformWheel})
