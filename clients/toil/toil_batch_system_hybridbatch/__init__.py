"""HybridBatch as a Toil batch system: ``toil ... --batchSystem hybridbatch``.

Current Toil finds this package by its name (``toil_batch_system_*``) and imports it; importing it registers the
batch system with ``toil.lib.plugins.register_plugin``. Toil 5.x has no plugin discovery: the ``.pth`` file installed
beside this package adds an import hook (``hybridbatch_toil_hook``) that registers it with
``toil.batchSystems.registry.addBatchSystemFactory`` as soon as Toil loads its registry, so unmodified workflows find
it without importing anything.
"""

NAME = "hybridbatch"


def batch_system_factory():
    """Returns the batch system's class (imported only when Toil asks for it)."""
    from .batch_system import HybridBatchSystem
    return HybridBatchSystem


def register_legacy(registry) -> None:
    """Adds the batch system to Toil 5.x's registry module, once; newer registries find the package themselves."""
    if hasattr(registry, "addBatchSystemFactory") and NAME not in registry.BATCH_SYSTEM_FACTORY_REGISTRY:
        registry.addBatchSystemFactory(NAME, batch_system_factory)


try:
    from toil.lib.plugins import register_plugin
except ImportError:  # Toil 5.x: the import hook registers it instead.
    pass
else:
    register_plugin("batch_system", NAME, batch_system_factory)
