"""Runs the same Toil workflows with `--batchSystem kubernetes` (Toil's own) and `--batchSystem hybridbatch` on the same
cluster, one after the other, and measures each run the same way: wall time of the leader, the API requests the batch
system's client made (from the API server's audit log: every request, with its user and user agent, as it arrives),
and each job's delay from its worker's end in the pod to getUpdatedBatchJob returning it to the leader (leader.py).

    python3 compare.py --python VENV_PYTHON --user NAME --audit-log PATH --shared DIR --out RESULT.json
                       [--children 500] [--systems hybridbatch,kubernetes] [--workflows sort,fanout]

Called by bench/toil/run, which prepares Toil, the plugin, the workers' image and the daemon.
"""

import argparse
import glob
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import time
from collections import Counter
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
# The user agent each batch system's Kubernetes client sends: HybridBatch's KubernetesClient, Toil's Python client.
AGENTS = {"hybridbatch": "kubernetes-csharp/", "kubernetes": "OpenAPI-Generator/"}


def audit_position(path):
    """Where the audit log ends now: its inode and size."""
    status = os.stat(path)
    return status.st_ino, status.st_size


def audit_events(path, position):
    """The audit log's events after POSITION, also across a rotation (the API server renames a full log to
    audit-<time>.log beside it and starts a new one)."""
    inode, offset = position
    pieces = []
    if os.stat(path).st_ino != inode:
        rotated = [p for p in glob.glob(os.path.join(os.path.dirname(path), "audit-*.log"))
                   if os.stat(p).st_ino == inode]
        if not rotated:
            raise SystemExit(f"{path} was rotated twice during the run (it keeps one old file): run again")
        pieces.append((rotated[0], offset))
        offset = 0
    pieces.append((path, offset))
    events = []
    for name, start in pieces:
        with open(name, "rb") as handle:
            handle.seek(start)
            events.extend(json.loads(line) for line in handle)
    return events


def stamp(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def workflow(name, directory, children):
    """The leader's arguments for workflow NAME in DIRECTORY, and a check of its output."""
    if name == "sort":
        rng = random.Random(20261202)
        lines = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(24)) for _ in range(240)]
        with open(os.path.join(directory, "input.txt"), "w") as handle:
            handle.writelines(line + "\n" for line in lines)
        expected = "".join(line + "\n" for line in sorted(lines))
        arguments = ["-m", "toil.test.sort.sort", "--fileToSort", f"{directory}/input.txt",
                     "--outputFile", f"{directory}/sorted.txt", "--N", "1500"]
        return arguments, lambda: open(os.path.join(directory, "sorted.txt")).read() == expected
    if name == "fanout":
        # The script is on the shared path, so the workers import it from where the leader did.
        shutil.copy(os.path.join(HERE, "fanout.py"), directory)
        arguments = [f"{directory}/fanout.py", "--children", str(children), "--outputFile", f"{directory}/sum.txt"]
        return arguments, lambda: open(os.path.join(directory, "sum.txt")).read().strip() == str(sum(range(children)))
    raise SystemExit(f"unknown workflow {name}: sort or fanout")


def run_one(options, system, name, root):
    directory = os.path.join(root, f"{name}-{system}")
    os.makedirs(directory)
    arguments, check = workflow(name, directory, options.children)
    record_path, ends = os.path.join(directory, "record.json"), os.path.join(directory, "ends")
    command = [options.python, os.path.join(HERE, "leader.py"), record_path, ends, *arguments,
               f"file:{directory}/jobstore", "--batchSystem", system,
               "--defaultCores", "0.25", "--defaultMemory", "100M", "--defaultDisk", "100M",
               "--logInfo", "--clean", "always"]
    # The workflow's directory (job store, input, output, script) at the same path in the leader and the pods, each
    # the way its users share it: Toil's Kubernetes batch system can only mount --kubernetesHostPath at its workers'
    # work dir (/var/lib/toil), so everything lies under that; HybridBatch mounts the directory itself.
    command += (["--hybridbatchSharedPath", directory] if system == "hybridbatch"
                else ["--kubernetesHostPath", options.shared])
    log_path = os.path.join(directory, "leader.log")
    position = audit_position(options.audit_log)
    print(f"== {name} with --batchSystem {system} ({datetime.now():%H:%M:%S}); log {log_path}", flush=True)
    started = time.time()
    with open(log_path, "w") as log:
        code = subprocess.run(command, cwd=directory, stdout=log, stderr=subprocess.STDOUT).returncode
    ended = time.time()
    time.sleep(2)  # the audit log is written in batches; the requests of the run's last second are in it after this
    with open(log_path) as log:
        tail = log.read()[-3000:]
    if code != 0:
        raise SystemExit(f"{name} with {system} failed (exit {code}):\n{tail}")
    if not check():
        raise SystemExit(f"{name} with {system}: the output is wrong (see {directory})")
    records = json.load(open(record_path))
    events = [e for e in audit_events(options.audit_log, position)
              if started <= stamp(e["requestReceivedTimestamp"]) <= ended]
    # The batch system's own client: its identity and its library's user agent (a kubectl run as the same identity
    # at the same time is not its).
    client = [e for e in events
              if e["user"]["username"] == options.user and e.get("userAgent", "").startswith(AGENTS[system])]
    delays = [r["seen"] - r["ended"] for r in records if "seen" in r and "ended" in r]
    turnaround = [r["ended"] - r["issued"] for r in records if "ended" in r]
    jobs = len(records)
    by_verb = Counter(f'{e["verb"]} {e.get("objectRef", {}).get("resource", e.get("requestURI"))}' for e in client)
    result = {
        "workflow": name, "system": system, "jobs": jobs, "wall_s": round(ended - started, 1),
        "jobs_seen": sum("seen" in r for r in records), "ends_recorded": sum("ended" in r for r in records),
        "failed_jobs": sum(1 for r in records if r.get("exit") not in (0, None)),
        "requests": len(client), "requests_per_job": round(len(client) / jobs, 2),
        "requests_by_verb": dict(by_verb.most_common()),
        "user_agent": AGENTS[system],
        "all_requests": len(events), "all_requests_per_job": round(len(events) / jobs, 2),
        "issue_to_end_s": {"p50": round(statistics.median(turnaround), 1), "p90": round(percentile(turnaround, 0.9), 1),
                           "max": round(max(turnaround), 1)} if turnaround else None,
        "delay_s": {"p50": round(statistics.median(delays), 3), "p90": round(percentile(delays, 0.9), 3),
                    "p99": round(percentile(delays, 0.99), 3), "max": round(max(delays), 3),
                    "mean": round(statistics.fmean(delays), 3)} if delays else None,
    }
    print(json.dumps(result), flush=True)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", required=True)
    parser.add_argument("--user", required=True, help="the identity both batch systems use (audit log's username)")
    parser.add_argument("--audit-log", required=True)
    parser.add_argument("--shared", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--children", type=int, default=500)
    parser.add_argument("--systems", default="hybridbatch,kubernetes")
    parser.add_argument("--workflows", default="sort,fanout")
    options = parser.parse_args()
    root = os.path.join(options.shared, "hybridbatch-bench", datetime.now().strftime("%Y%m%d-%H%M%S"))
    results = []
    for name in options.workflows.split(","):
        for system in options.systems.split(","):
            results.append(run_one(options, system, name, root))
    document = {"run": os.path.basename(options.out)[len("toil-"):-len(".json")], "measured_at": datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"), "machine": {
        "cores": os.cpu_count(), "kernel": platform.release()}, "children": options.children, "runs": results}
    with open(options.out, "w") as handle:
        json.dump(document, handle, indent=2)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
