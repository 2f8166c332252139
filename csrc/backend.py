"""In-tree PEP 517 backend: setuptools, plus the cffi modules from csrc/.

The project keeps a fixed top level (no setup.py), but cffi's out-of-line API mode is
wired into setuptools through the ``cffi_modules`` keyword of ``setup()``.  This wrapper
calls ``setup()`` itself with that keyword; every other piece of metadata still comes
from pyproject.toml.
"""
from setuptools import build_meta as _orig


class _Backend(_orig._BuildMetaBackend):
    def run_setup(self, setup_script="setup.py"):
        import glob

        import setuptools

        # every csrc/build_*.py defines one cffi module (``ffibuilder``): _native, and
        # modules that must stay out of the hot path (libseccomp is loaded only on a
        # seccomp cache miss)
        modules = sorted(glob.glob("csrc/build_*.py"))
        setuptools.setup(cffi_modules=[m + ":ffibuilder" for m in modules])


_BACKEND = _Backend()
get_requires_for_build_wheel = _BACKEND.get_requires_for_build_wheel
get_requires_for_build_sdist = _BACKEND.get_requires_for_build_sdist
get_requires_for_build_editable = _BACKEND.get_requires_for_build_editable
prepare_metadata_for_build_wheel = _BACKEND.prepare_metadata_for_build_wheel
prepare_metadata_for_build_editable = _BACKEND.prepare_metadata_for_build_editable
build_wheel = _BACKEND.build_wheel
build_sdist = _BACKEND.build_sdist
build_editable = _BACKEND.build_editable
