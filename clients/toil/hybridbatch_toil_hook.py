"""Registers HybridBatch with Toil 5.x's batch-system registry when Toil imports that registry.

Imported at interpreter start by ``toil-batch-system-hybridbatch.pth``, so it lives outside the package and imports
nothing of Toil (Toil's package import is heavy): it only wraps the loading of ``toil.batchSystems.registry``.
"""

import importlib.abc
import sys

TARGET = "toil.batchSystems.registry"


class _RegisterAfterLoad(importlib.abc.Loader):
    def __init__(self, loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        try:
            from toil_batch_system_hybridbatch import register_legacy
            register_legacy(module)
        except Exception as error:  # Never break Toil's own import for the plugin's sake.
            sys.stderr.write(f"toil_batch_system_hybridbatch: not registered: {error}\n")


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _RegisterAfterLoad(spec.loader)
                return spec
        return None


def install() -> None:
    if TARGET in sys.modules:
        from toil_batch_system_hybridbatch import register_legacy
        register_legacy(sys.modules[TARGET])
    elif not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


install()
