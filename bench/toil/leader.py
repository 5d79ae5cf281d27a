"""Runs a Toil workflow's leader as `python3 -m MODULE ARGS` or `python3 SCRIPT ARGS` would, and records, for every
job the leader gives its batch system, when it was issued, when the job's worker process ended in its pod, and when
getUpdatedBatchJob returned it to the leader. The same for any batch system: the record wraps the batch system's
class (issueBatchJob, getUpdatedBatchJob), and each job's command gains `; date +%s.%N > ENDS/K` after the worker,
which the pod's shell runs as the worker exits (ENDS is a directory the pods share with the leader).

    python3 leader.py RECORD.json ENDS_DIR (-m MODULE | SCRIPT) ARGS...
"""

import atexit
import json
import os
import runpy
import sys
import threading
import time


def instrument(cls, ends, records, lock):
    issue, updated = cls.issueBatchJob, cls.getUpdatedBatchJob

    def issueBatchJob(self, job_desc, *args, **kwargs):
        with lock:
            key = len(records)
            records.append({"issued": time.time()})
        job_desc.command = f"{job_desc.command}; status=$?; date +%s.%N > {ends}/{key}; exit $status"
        batch_id = issue(self, job_desc, *args, **kwargs)
        with lock:
            records[key]["id"] = batch_id
        return batch_id

    def getUpdatedBatchJob(self, maxWait):
        info = updated(self, maxWait)
        if info is not None:
            now = time.time()
            with lock:
                for record in records:
                    if record.get("id") == info.jobID and "seen" not in record:
                        record.update(seen=now, exit=info.exitStatus, reason=str(info.exitReason), wall=info.wallTime)
                        break
        return info

    cls.issueBatchJob, cls.getUpdatedBatchJob = issueBatchJob, getUpdatedBatchJob


def main():
    record_path, ends = sys.argv[1], os.path.abspath(sys.argv[2])
    os.makedirs(ends, exist_ok=True)
    records, lock = [], threading.Lock()
    from toil.batchSystems.kubernetes import KubernetesBatchSystem
    from toil_batch_system_hybridbatch.batch_system import HybridBatchSystem
    for cls in (KubernetesBatchSystem, HybridBatchSystem):
        instrument(cls, ends, records, lock)

    def write():
        for key, record in enumerate(records):
            try:
                with open(os.path.join(ends, str(key))) as handle:
                    record["ended"] = float(handle.read().strip())
            except (OSError, ValueError):
                pass
        with open(record_path, "w") as handle:
            json.dump(records, handle)

    atexit.register(write)
    if sys.argv[3] == "-m":
        sys.path[0] = os.getcwd()
        sys.argv = [sys.argv[4]] + sys.argv[5:]
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    else:
        sys.argv = sys.argv[3:]
        # As `python3 SCRIPT` has it: the script's folder first on the path, not this one's.
        sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))
        runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
