"""The plugin's own behaviour beyond Toil's tests: how Toil finds it, and what bad input gets."""

import os
import subprocess
import sys
import unittest
import uuid

from toil.batchSystems.abstractBatchSystem import BatchJobExitReason
from toil.common import Config
from toil.job import JobDescription

from toil_batch_system_hybridbatch.batch_system import HybridBatchSystem, HybridBatchUnavailable


def config() -> Config:
    result = Config()
    result.workflowID = str(uuid.uuid4())
    result.cleanWorkDir = "always"
    return result


def job(command: str, name: str = "job") -> JobDescription:
    description = JobDescription(requirements=dict(memory=int(100e6), cores=1, disk=1000, preemptible=False,
                                                   accelerators=[]), jobName=name, unitName=None)
    description.command = command
    description.jobStoreID = name
    return description


def run(*args: str, **environment: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **environment})


class RegistrationTest(unittest.TestCase):
    def test_a_fresh_interpreter_finds_hybridbatch_among_toils_batch_systems(self):
        # Nothing imported by hand: the installed .pth hook registers it when Toil loads its registry.
        result = run("-c", "from toil.batchSystems.registry import BATCH_SYSTEMS, BATCH_SYSTEM_FACTORY_REGISTRY as r\n"
                           "print('hybridbatch' in BATCH_SYSTEMS, r['hybridbatch']().__name__)")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "True HybridBatchSystem")

    def test_toils_command_line_offers_the_batch_system_and_its_options(self):
        result = run("-m", "toil.test.sort.sort", "--help")
        self.assertEqual(result.returncode, 0, result.stderr)
        for option in ("hybridbatch", "--hybridbatchUrl", "--hybridbatchToken", "--hybridbatchSharedPath",
                       "--kubernetesHostPath"):
            self.assertIn(option, result.stdout)


class BadInputTest(unittest.TestCase):
    def test_an_unreachable_daemon_stops_toil_at_start_with_the_reason_and_no_traceback(self):
        store = os.path.join(os.environ.get("TMPDIR", "/tmp"), "hybridbatch-unreachable-" + uuid.uuid4().hex)
        result = run("-m", "toil.test.sort.sort", "file:" + store, "--batchSystem", "hybridbatch",
                     "--hybridbatchUrl", "http://127.0.0.1:9", "--fileToSort", os.devnull)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("cannot reach the HybridBatch daemon at http://127.0.0.1:9", result.stderr)
        self.assertNotIn("Traceback", result.stderr)

    def test_a_wrong_token_is_named(self):
        os.environ["HYBRIDBATCH_TOKEN_SAVED"] = os.environ.get("HYBRIDBATCH_TOKEN", "")
        try:
            os.environ["HYBRIDBATCH_TOKEN"] = "not-the-token"
            with self.assertRaises(HybridBatchUnavailable) as raised:
                HybridBatchSystem(config(), 2, int(1e9), 2001)
            self.assertIn("the one given is wrong", str(raised.exception.code))
        finally:
            os.environ["HYBRIDBATCH_TOKEN"] = os.environ.pop("HYBRIDBATCH_TOKEN_SAVED")

    def test_an_option_the_daemon_refuses_stops_with_its_message(self):
        settings = config()
        settings.kubernetes_host_path = "relative/path"
        with self.assertRaises(HybridBatchUnavailable) as raised:
            HybridBatchSystem(settings, 2, int(1e9), 2001)
        self.assertIn("'relative/path' is not absolute", str(raised.exception.code))

    def test_a_shared_path_the_daemon_refuses_stops_with_its_message(self):
        settings = config()
        settings.hybridbatch_shared_paths = ["/var/tmp"]
        with self.assertRaises(HybridBatchUnavailable) as raised:
            HybridBatchSystem(settings, 2, int(1e9), 2001)
        self.assertIn("the shared path '/var/tmp' overlaps /var/tmp", str(raised.exception.code))

    def test_a_job_the_daemon_refuses_is_reported_failed_once_with_error(self):
        batch = HybridBatchSystem(config(), 2, int(1e9), 2001)
        try:
            refused = batch.issueBatchJob(job(""), job_environment={"1BAD": "x"})
            self.assertIn(refused, batch.getIssuedBatchJobIDs())
            update = batch.getUpdatedBatchJob(maxWait=10)
            self.assertEqual((update.jobID, update.exitReason), (refused, BatchJobExitReason.ERROR))
            self.assertNotEqual(update.exitStatus, 0)
            self.assertNotIn(refused, batch.getIssuedBatchJobIDs())
            self.assertIsNone(batch.getUpdatedBatchJob(maxWait=0))
        finally:
            batch.shutdown()


class ExitReasonTest(unittest.TestCase):
    def test_exit_codes_and_reasons_reach_toil(self):
        batch = HybridBatchSystem(config(), 2, int(1e9), 2001)
        try:
            ok = batch.issueBatchJob(job("true", "ok"))
            failed = batch.issueBatchJob(job("exit 3", "failed"))
            seen = {}
            while len(seen) < 2:
                update = batch.getUpdatedBatchJob(maxWait=300)
                self.assertIsNotNone(update, f"only {seen} ended in 300 s")
                seen[update.jobID] = update
            self.assertEqual((seen[ok].exitStatus, seen[ok].exitReason), (0, BatchJobExitReason.FINISHED))
            self.assertEqual((seen[failed].exitStatus, seen[failed].exitReason), (3, BatchJobExitReason.FAILED))
            self.assertGreater(seen[ok].wallTime, 0)
        finally:
            batch.shutdown()

    def test_why_a_job_could_not_run_is_in_the_leaders_log(self):
        settings = config()
        settings.hybridbatch_image = "docker.io/library/no-such-image:1"
        settings.kubernetes_pod_timeout = 5
        batch = HybridBatchSystem(settings, 2, int(1e9), 2001)
        try:
            missing = batch.issueBatchJob(job("true", "missing-image"))
            with self.assertLogs("toil.batchSystems.hybridbatch", level="WARNING") as logs:
                update = batch.getUpdatedBatchJob(maxWait=120)
            self.assertEqual((update.jobID, update.exitReason), (missing, BatchJobExitReason.ERROR))
            line = "\n".join(logs.output)
            self.assertIn(f"job {missing} ", line)
            self.assertIn("ERROR", line)
            self.assertIn("pod timeout", line)
        finally:
            batch.shutdown()


if __name__ == "__main__":
    unittest.main()
