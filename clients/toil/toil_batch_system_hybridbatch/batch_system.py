"""Toil's batch-system contract, kept by HybridBatch: every decision is the daemon's; this class only translates."""

import itertools
import logging
import math
import os
import threading
import time
from argparse import ArgumentParser, _ArgumentGroup
from typing import Any, Dict, List, Optional, Union

from toil.batchSystems.abstractBatchSystem import (EXIT_STATUS_UNAVAILABLE_VALUE, BatchJobExitReason,
                                                   BatchSystemSupport, InsufficientSystemResources,
                                                   UpdatedBatchJobInfo)

from .client import DaemonClient, DaemonError

# Under Toil's logger, as Toil's own batch systems log: its --logLevel applies, and the lines show in the leader's log.
logger = logging.getLogger("toil.batchSystems.hybridbatch")

DEFAULT_URL = "http://127.0.0.1:8000"

# Toil's own options for its Kubernetes batch system, passed through to HybridBatch: (flag, destination, default,
# variable, help). They are added here only when Toil's Kubernetes batch system has not added them already.
KUBERNETES_OPTIONS = [
    ("--kubernetesHostPath", "kubernetes_host_path", None, "TOIL_KUBERNETES_HOST_PATH",
     "Path on Kubernetes hosts to use as shared inter-pod temp directory."),
    ("--kubernetesOwner", "kubernetes_owner", None, "TOIL_KUBERNETES_OWNER",
     "Username to mark Kubernetes jobs with (default: the daemon's)."),
    ("--kubernetesServiceAccount", "kubernetes_service_account", None, "TOIL_KUBERNETES_SERVICE_ACCOUNT",
     "Service account to run jobs as."),
    ("--kubernetesPodTimeout", "kubernetes_pod_timeout", 120, "TOIL_KUBERNETES_POD_TIMEOUT",
     "Seconds to wait for a scheduled Kubernetes pod to start running."),
]


class HybridBatchSystem(BatchSystemSupport):
    """
    Runs Toil's jobs as Kubernetes Jobs through the HybridBatch daemon (``hybridbatch serve``): one session of the
    daemon per Toil leader, status from the daemon's watch instead of polling, and exact exit reasons (an OOM kill is
    MEMLIMIT, a lost node or deleted pod LOST, a missing image or unschedulable pod ERROR).

    The ids Toil sees are this object's own; a job the daemon refuses gets one too and is reported as failed with
    the daemon's reason, so Toil's retry logic sees it as it sees any failed job.
    """

    @classmethod
    def supportsAutoDeployment(cls) -> bool:
        return False

    @classmethod
    def supportsWorkerCleanup(cls) -> bool:
        return False

    def __init__(self, config: Any, maxCores: float, maxMemory: int, maxDisk: int) -> None:
        super().__init__(config, maxCores, maxMemory, maxDisk)
        url = _setting(config, "hybridbatch_url", "HYBRIDBATCH_URL") or DEFAULT_URL
        token = _setting(config, "hybridbatch_token", "HYBRIDBATCH_TOKEN")
        self._client = DaemonClient(url, token)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._to_daemon: Dict[int, int] = {}
        self._from_daemon: Dict[int, int] = {}
        self._refused: List[UpdatedBatchJobInfo] = []
        # Toil's maxima are per job, checked here (check_resource_request) as Toil's Kubernetes batch system checks
        # them; the daemon is not given them, since HybridBatch would also hold all running jobs to them together.
        request: Dict[str, Any] = {}
        for key, attribute, variable in (("hostPath", "kubernetes_host_path", "TOIL_KUBERNETES_HOST_PATH"),
                                         ("owner", "kubernetes_owner", "TOIL_KUBERNETES_OWNER"),
                                         ("serviceAccount", "kubernetes_service_account", "TOIL_KUBERNETES_SERVICE_ACCOUNT"),
                                         ("workDir", "hybridbatch_work_dir", "HYBRIDBATCH_WORK_DIR"),
                                         ("image", "hybridbatch_image", "HYBRIDBATCH_IMAGE")):
            value = _setting(config, attribute, variable)
            if value:
                request[key] = value
        shared = _shared_paths(config)
        if shared:
            request["sharedPaths"] = shared
        timeout = _setting(config, "kubernetes_pod_timeout", "TOIL_KUBERNETES_POD_TIMEOUT")
        if timeout is not None:
            try:
                request["podTimeoutSeconds"] = float(timeout)
            except ValueError:
                raise HybridBatchUnavailable(
                    f"--kubernetesPodTimeout '{timeout}' is not a number of seconds: give one such as 120") from None
        try:
            status, body = self._call("POST", "/sessions", request)
            if status != 201:
                raise _refusal("the HybridBatch daemon refused to open a session", status, body)
        except BaseException:
            self._client.close()
            raise
        self.run_id: str = body["runId"]
        logger.info("HybridBatch session %s at %s: namespace %s, owner %s", self.run_id, self._client.url,
                    body.get("namespace"), body.get("owner"))

    # Options ---------------------------------------------------------------------------------------------------

    @classmethod
    def add_options(cls, parser: Union[ArgumentParser, _ArgumentGroup]) -> None:
        parser.add_argument("--hybridbatchUrl", dest="hybridbatch_url", default=None,
                            help=f"URL of the HybridBatch daemon (hybridbatch serve). Default: {DEFAULT_URL}; "
                                 "variable HYBRIDBATCH_URL.")
        parser.add_argument("--hybridbatchToken", dest="hybridbatch_token", default=None,
                            help="Bearer token of the HybridBatch daemon (its --token). Variable HYBRIDBATCH_TOKEN.")
        parser.add_argument("--hybridbatchImage", dest="hybridbatch_image", default=None,
                            help="Image Toil's workers run in; it needs the same Toil as the leader. Default: the "
                                 "daemon's image; variable HYBRIDBATCH_IMAGE.")
        parser.add_argument("--hybridbatchWorkDir", dest="hybridbatch_work_dir", default=None,
                            help="Where the shared host path (--kubernetesHostPath) appears in the pods. Give the "
                                 "path the leader sees it at to share a file job store with the workers. Variable "
                                 "HYBRIDBATCH_WORK_DIR.")
        parser.add_argument("--hybridbatchSharedPath", dest="hybridbatch_shared_paths", action="append", default=None,
                            help="A directory every job mounts at the same path, for files the leader and its jobs "
                                 "share (a workflow script's own directory); may be given more than once. A file job "
                                 "store is shared without it. Variable HYBRIDBATCH_SHARED_PATHS, separated by ':'.")
        known = getattr(parser, "_option_string_actions", {})
        for flag, dest, default, variable, text in KUBERNETES_OPTIONS:
            if flag not in known:
                parser.add_argument(flag, dest=dest, default=default, help=f"{text} Variable {variable}.")

    @classmethod
    def setOptions(cls, setOption: Any) -> None:
        setOption("hybridbatch_url", default=None, env=["HYBRIDBATCH_URL"])
        setOption("hybridbatch_token", default=None, env=["HYBRIDBATCH_TOKEN"])
        setOption("hybridbatch_image", default=None, env=["HYBRIDBATCH_IMAGE"])
        setOption("hybridbatch_work_dir", default=None, env=["HYBRIDBATCH_WORK_DIR"])
        setOption("hybridbatch_shared_paths", default=None)
        for _, dest, default, variable, _ in KUBERNETES_OPTIONS:
            setOption(dest, default=default, env=[variable])

    # The contract ----------------------------------------------------------------------------------------------

    def _check_accelerator_request(self, requirer: Any) -> None:
        # Kubernetes schedules GPUs (nvidia.com/gpu, amd.com/gpu); nothing else.
        for accelerator in requirer.accelerators:
            if accelerator.get("kind", "gpu") != "gpu":
                raise InsufficientSystemResources(requirer, "accelerators", [], details=[
                    f"The HybridBatch batch system can only provide GPUs on Kubernetes, not a "
                    f"'{accelerator.get('kind')}'."])

    def issueBatchJob(self, jobDesc: Any, job_environment: Optional[Dict[str, str]] = None) -> int:
        self.check_resource_request(jobDesc)
        environment = dict(self.environment)
        environment.update(job_environment or {})
        body = {
            "command": jobDesc.command,
            "name": str(jobDesc),
            "cores": float(jobDesc.cores),
            "memory": _whole(jobDesc.memory),
            "disk": _whole(jobDesc.disk),
            "preemptible": bool(jobDesc.preemptible),
            "accelerators": [
                {key: a[key] for key in ("count", "kind", "model", "brand", "api") if a.get(key) is not None}
                for a in getattr(jobDesc, "accelerators", [])
            ],
            "environment": environment,
        }
        status, answer = self._call("POST", f"/sessions/{self.run_id}/jobs", body)
        with self._lock:
            local = next(self._ids)
            if status == 201:
                self._to_daemon[local] = answer["id"]
                self._from_daemon[answer["id"]] = local
                logger.debug("Issued job %s as %d (HybridBatch job %d)", jobDesc, local, answer["id"])
                return local
            if status == 404:
                raise _refusal("the HybridBatch session is gone", status, answer)
            # Refused (an invalid command, request, environment or placement): failed, as Toil expects it.
            reason = answer.get("error") or f"status {status}"
            logger.error("HybridBatch refused job %s (%d): %s", jobDesc, local, reason)
            self._refused.append(UpdatedBatchJobInfo(jobID=local, exitStatus=EXIT_STATUS_UNAVAILABLE_VALUE,
                                                     exitReason=BatchJobExitReason.ERROR, wallTime=0))
            return local

    def killBatchJobs(self, jobIDs: List[int]) -> None:
        with self._lock:
            self._refused = [job for job in self._refused if job.jobID not in jobIDs]
            ids = [self._to_daemon[i] for i in jobIDs if i in self._to_daemon]
        if ids:
            self._expect("POST", f"/sessions/{self.run_id}/kill", {"ids": ids}, 204)
        with self._lock:
            for i in jobIDs:
                daemon = self._to_daemon.pop(i, None)
                if daemon is not None:
                    self._from_daemon.pop(daemon, None)

    def getIssuedBatchJobIDs(self) -> List[int]:
        body = self._expect("GET", f"/sessions/{self.run_id}/issued", None, 200)
        with self._lock:
            issued = [self._from_daemon[i] for i in body.get("ids", []) if i in self._from_daemon]
            return issued + [job.jobID for job in self._refused]

    def getRunningBatchJobIDs(self) -> Dict[int, float]:
        body = self._expect("GET", f"/sessions/{self.run_id}/running", None, 200)
        with self._lock:
            return {self._from_daemon[int(i)]: float(seconds) for i, seconds in body.get("running", {}).items()
                    if int(i) in self._from_daemon}

    def getUpdatedBatchJob(self, maxWait: int) -> Optional[UpdatedBatchJobInfo]:
        with self._lock:
            if self._refused:
                return self._refused.pop(0)
        deadline = time.monotonic() + max(0.0, float(maxWait))
        while True:
            wait = max(0.0, deadline - time.monotonic())
            status, body = self._call("GET", f"/sessions/{self.run_id}/updated?maxWait={wait:.3f}")
            if status == 200:
                with self._lock:
                    local = self._from_daemon.pop(body["jobId"], None)
                    if local is not None:
                        self._to_daemon.pop(local, None)
                if local is None:
                    continue  # Killed here after the daemon saw it end: Toil never hears of a killed job.
                reason = BatchJobExitReason(body["exitReasonCode"])
                if reason != BatchJobExitReason.FINISHED and body.get("message"):
                    # Why, in HybridBatch's words (a pod stuck past its timeout, an OOM kill, a lost node): Toil's
                    # own log of a failed job has only the exit status and reason code.
                    logger.warning("job %d (%s) ended %s, exit status %d: %s", local, body.get("backingId", "?"),
                                   reason.name, body["exitStatus"], body["message"])
                return UpdatedBatchJobInfo(jobID=local, exitStatus=body["exitStatus"], exitReason=reason,
                                           wallTime=body["wallTime"])
            if status != 204:
                raise _refusal("the HybridBatch daemon refused to return finished jobs", status, body)
            if time.monotonic() >= deadline:
                return None

    def getSchedulingStatusMessage(self) -> Optional[str]:
        return None

    def shutdown(self) -> None:
        try:
            self._call("DELETE", f"/sessions/{self.run_id}")
        finally:
            self._client.close()

    # Calls -------------------------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Optional[Dict[str, Any]] = None):
        try:
            status, answer = self._client.call(method, path, body)
        except DaemonError as error:
            raise HybridBatchUnavailable(str(error)) from None
        if status == 401:
            raise HybridBatchUnavailable(
                f"the HybridBatch daemon at {self._client.url} wants a bearer token, and "
                + ("the one given is wrong" if self._client._token else "none was given")
                + ": give its --token with --hybridbatchToken or HYBRIDBATCH_TOKEN")
        return status, answer

    def _expect(self, method: str, path: str, body: Optional[Dict[str, Any]], wanted: int) -> Dict[str, Any]:
        status, answer = self._call(method, path, body)
        if status != wanted:
            raise _refusal(f"the HybridBatch daemon refused {method} {path}", status, answer)
        return answer


class HybridBatchUnavailable(SystemExit):
    """
    The daemon cannot be used (unreachable, wrong token, an option it refuses). A SystemExit, so that Toil stops
    with the daemon's message and exit status 1 instead of a traceback.
    """

    def __init__(self, message: str) -> None:
        super().__init__(f"hybridbatch: {message}")


def _setting(config: Any, attribute: str, variable: str) -> Optional[str]:
    """An option from Toil's configuration, else from its variable (a Config made by hand has no batch-system options)."""
    value = getattr(config, attribute, None)
    return value if value not in (None, "") else os.environ.get(variable) or None


def _shared_paths(config: Any) -> List[str]:
    """
    The directories every job mounts at the same path: the ones given, and a file job store's, as Toil's own TES batch
    system mounts it, so that workers read and write the job store the leader made.
    """
    given = getattr(config, "hybridbatch_shared_paths", None)
    if not given:
        given = [p for p in os.environ.get("HYBRIDBATCH_SHARED_PATHS", "").split(":") if p]
    paths = [os.path.abspath(p) for p in given]
    locator = getattr(config, "jobStore", None)
    if locator:
        from toil.common import Toil  # here, not at the top: toil.common imports the batch-system registry

        kind, rest = Toil.parseLocator(locator)
        if kind == "file":
            paths.append(os.path.abspath(rest))
    # A directory inside another one shared is shared already.
    return [p for p in dict.fromkeys(paths)
            if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in paths)]


def _refusal(what: str, status: int, body: Dict[str, Any]) -> HybridBatchUnavailable:
    return HybridBatchUnavailable(f"{what} (status {status}): {body.get('error') or body}")


def _whole(value: Union[int, float]) -> int:
    """Bytes as an integer; Toil's requests may be floats (1e9)."""
    return int(math.ceil(float(value)))
