"""Toil's own batch-system tests, as the installed Toil ships them, run against HybridBatch.

A thin subclass of Toil's AbstractBatchSystemTest that only names the batch system, as Toil's own
KubernetesBatchSystemTest does. The daemon is found through HYBRIDBATCH_URL (and HYBRIDBATCH_TOKEN); the jobs run in
HYBRIDBATCH_IMAGE, which needs bash (Toil's environment tests call it).
"""

from toil.test.batchSystems.batchSystemTest import hidden, numCores


class HybridBatchSystemTest(hidden.AbstractBatchSystemTest):
    def supportsWallTime(self):
        return True

    def createBatchSystem(self):
        from toil_batch_system_hybridbatch.batch_system import HybridBatchSystem
        return HybridBatchSystem(config=self.config, maxCores=numCores, maxMemory=1e9, maxDisk=2001)
