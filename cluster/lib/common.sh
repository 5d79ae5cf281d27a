# Shared settings and helpers of cluster/local-cluster.
# shellcheck shell=bash

STATE="${HYBRIDBATCH_CLUSTER_HOME:-/var/lib/hybridbatch-cluster}"
# CI runners may start commands without HOME.
CACHE_ROOT="${XDG_CACHE_HOME:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache}/hybridbatch"
BUILD_CACHE="$CACHE_ROOT/kubernetes"

KUBE_SERIES="1.20"
NETNS="hybridbatch"
NETNS_PATH="/var/run/netns/$NETNS"
HOST_VETH="hb-host"
NS_VETH="hb-ns"
HOST_IP="10.251.0.1"
NS_IP="10.251.0.2"
POD_CIDR="10.252.0.0/24"
SERVICE_CIDR="10.253.0.0/24"
SERVICE_IP="10.253.0.1"
CLUSTER_DNS_IP="10.253.0.10"
CNI_BRIDGE="hb-cni0"
NODE_NAME="hybridbatch-node"
API_URL="https://${NS_IP}:6443"
SANDBOX_IMAGE="k8s.gcr.io/pause:3.2"
BUSYBOX_IMAGE="docker.io/library/busybox:1.35"
MINIMAL_IMAGE="docker.io/hybridbatch/busybox-minimal:1.35"

PKI="$STATE/pki"
ETC="$STATE/etc"
RUN="$STATE/run"
LOGS="$STATE/logs"
AUDIT_POLICY="$ETC/audit-policy.yaml"
AUDIT_LOG="$LOGS/audit.log"
CONTAINERD_SOCK="$RUN/containerd/containerd.sock"
ADMIN_KUBECONFIG="$STATE/kubeconfig/admin.kubeconfig"
APP_KUBECONFIG="$STATE/kubeconfig/hybridbatch.kubeconfig"

STARTED_AT="$(date +%s)"
# Outside the state directory, which 'reset' deletes while holding the lock.
LOCK_FILE="/run/lock/hybridbatch-local-cluster.lock"

# Progress goes to stderr, so commands that print a result (kubeconfig) stay scriptable. Progress lines carry the seconds since the command started, so a slow step is visible in CI logs.
step() {
    printf '[%4ds] %s\n' "$(($(date +%s) - STARTED_AT))" "$*" >&2
}

die() {
    printf '[%4ds] error: %s\n' "$(($(date +%s) - STARTED_AT))" "$*" >&2
    exit 1
}

# Runs a command whose chatter is noise when it works (openssl's progress dots, apt-get source): its output is
# kept and shown, with the command itself, only when it fails.
quietly() {
    local output status=0
    output="$("$@" 2>&1)" || status=$?
    if ((status != 0)); then
        printf '%s\n' "$output" | tail -n 20 >&2
        die "'$*' failed with exit status $status (its output is above)"
    fi
}

# Any command that fails outside an explicit check ends the script under `set -e`; say which one, where, and with
# what status, instead of leaving the caller a bare exit code. Subshells inherit the trap (set -E); the marker
# keeps the enclosing shells from repeating the report of a failure a subshell has already described.
ERROR_MARKER="${TMPDIR:-/tmp}/hybridbatch-local-cluster.$$.error"
on_unexpected_error() {
    local status="$1" file="$2" line="$3" command
    if [[ ! -e "$ERROR_MARKER" ]]; then
        : >"$ERROR_MARKER" 2>/dev/null || true
        # The source line, not $BASH_COMMAND: in a pipeline that is the last command, not the one that failed.
        command="$(sed -n "${line}p" "$file" 2>/dev/null | sed -E 's/^[[:space:]]+//')"
        printf '[%4ds] error: %s failed with exit status %s (%s:%s)\n' "$(($(date +%s) - STARTED_AT))" \
            "'${command:-?}'" "$status" "${file##*/}" "$line" >&2
    fi
    exit "$status"
}
set -E
trap 'on_unexpected_error $? "${BASH_SOURCE[0]}" "$LINENO"' ERR
trap 'rm -f "$ERROR_MARKER"' EXIT

require_root() {
    [[ $(id -u) -eq 0 ]] || die "needs root (network namespace, containerd, kubelet)"
}

# Polls CMD every half second until it succeeds or TIMEOUT seconds pass; says every 10 s that it still waits.
wait_for() {
    local description="$1" timeout="$2"
    shift 2
    local start now last_note
    start="$(date +%s)"
    last_note="$start"
    until "$@" >/dev/null 2>&1; do
        now="$(date +%s)"
        if ((now - start >= timeout)); then
            return 1
        fi
        if ((now - last_note >= 10)); then
            step "  still waiting for $description ($((now - start))s)"
            last_note="$now"
        fi
        sleep 0.5
    done
}

# Writes stdin to FILE only when the content differs, atomically, so a no-op 'up' rewrites nothing and a
# crash never leaves half a file. Returns 0 if the file changed.
write_if_changed() {
    local file="$1" mode="${2:-0644}" tmp
    mkdir -p "$(dirname "$file")"
    tmp="$(mktemp "$file.XXXXXX")"
    cat >"$tmp"
    chmod "$mode" "$tmp"
    if [[ -f "$file" ]] && cmp -s "$tmp" "$file"; then
        rm -f "$tmp"
        return 1
    fi
    mv -f "$tmp" "$file"
    return 0
}

admin_kubectl() {
    "$KUBE_BIN/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" "$@"
}

# up, down and reset run one at a time: test fixtures of parallel test runs may all call 'up' at once, and a
# second cold 'up' must wait for the first build rather than start another one.
LOCKED=0
take_lock() {
    ((LOCKED)) && return 0
    mkdir -p "$(dirname "$LOCK_FILE")"
    exec 9>"$LOCK_FILE"
    if ! flock -n 9; then
        step "waiting for another local-cluster command to finish"
        flock 9
    fi
    LOCKED=1
}
