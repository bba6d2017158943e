"""`kernel`: sim.engine.kernel, imported on first attribute access.

Importing numba costs about a second, and compiling the kernels (when numba's on-disk cache
is cold) tens of seconds. Commands that only read results or scenario files (`report`,
`validate`, `--version`) reach the engine's Python layer (chunk layout, statistics,
results) but never a kernel, so runner.py, results.py and stats.py refer to the kernel
through this proxy: numba is imported when a simulation first touches a kernel or one of
its types, and each kernel is compiled (or loaded from the cache) on its first call.
tests/test_lazy_imports.py checks that those commands leave numba unimported.
"""

from __future__ import annotations

import importlib


class LazyModule:
    """A module imported on the first attribute access (then behaves as the module)."""

    def __init__(self, name: str):
        self.__dict__["_name"] = name

    def __getattr__(self, attr: str):
        module = importlib.import_module(self.__dict__["_name"])
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self.__dict__['_name']!r}>"


kernel = LazyModule("sim.engine.kernel")
