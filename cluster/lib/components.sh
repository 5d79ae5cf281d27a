# Configuration, start, health and stop of containerd, etcd, the control plane, the kubelet and kube-proxy. Every daemon
# runs detached (setsid) inside the cluster's network namespace, logs to $LOGS/NAME.log and is found again by
# its executable and its state-directory arguments, so stale pid files after a crash do no harm.
# shellcheck shell=bash

COMPONENTS=(containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

# ---------------------------------------------------------------------------------------------------------
# Configuration files

write_kubeconfig() {
    local file="$1" user="$2" token="$3" namespace="${4:-default}"
    write_if_changed "$file" 0600 <<EOF || true
apiVersion: v1
kind: Config
clusters:
- name: hybridbatch-local
  cluster:
    server: ${API_URL}
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: ${user}
  user:
    token: ${token}
contexts:
- name: ${user}@hybridbatch-local
  context:
    cluster: hybridbatch-local
    user: ${user}
    namespace: ${namespace}
current-context: ${user}@hybridbatch-local
EOF
}

write_containerd_config() {
    write_if_changed "$ETC/containerd/config.toml" <<EOF || true
version = 2
root = "${STATE}/containerd/root"
state = "${RUN}/containerd/state"

[grpc]
  address = "${CONTAINERD_SOCK}"

[plugins."io.containerd.internal.v1.opt"]
  path = "${STATE}/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${SANDBOX_IMAGE}"
  # No CAP_SYS_RESOURCE here: runc fails on the kubelet's negative oom_score_adj unless it is clamped.
  restrict_oom_score_adj = true
  # Pod network namespaces stay inside the state directory, so 'reset' can remove all of them.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "${RUN}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${ETC}/cni/net.d"
EOF
}

write_kubelet_config() {
    write_if_changed "$ETC/kubelet/config.yaml" <<EOF || true
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Listens on the namespace address so the API server can fetch logs; only CA-signed clients get in.
address: 0.0.0.0
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: ${PKI}/kubelet.crt
tlsPrivateKeyFile: ${PKI}/kubelet.key
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: ${PKI}/ca.crt
authorization:
  mode: AlwaysAllow
cgroupDriver: cgroupfs
failSwapOn: false
# Today's defaults (1.27+), not 1.20's 5/10, which would throttle every Job-based client.
kubeAPIQPS: 50
kubeAPIBurst: 100
serializeImagePulls: false
# Imported images cannot be pulled again, so they must never be garbage collected.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# A nearly full disk must not evict every pod of a test run.
evictionHard:
  nodefs.available: "1%"
  nodefs.inodesFree: "1%"
  imagefs.available: "1%"
  memory.available: "100Mi"
featureGates:
  TTLAfterFinished: true
clusterDomain: cluster.local
# No DNS server runs here, but like on a real cluster pods get a cluster resolver address; without one every pod
# gets a MissingClusterDNS warning event.
clusterDNS:
- ${CLUSTER_DNS_IP}
podCIDR: ${POD_CIDR}
maxPods: 110
EOF
}

# iptables mode, so pods reach Services (the in-cluster API server address ${SERVICE_IP}:443 first). Nothing here may
# touch the machine's global settings: the conntrack table size and timeouts are left alone (0), and so is its own
# OOM score (this sandbox has no CAP_SYS_RESOURCE).
write_kube_proxy_config() {
    write_if_changed "$ETC/kube-proxy/config.yaml" <<EOF || true
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: ${ETC}/kubeconfig/kube-proxy.kubeconfig
hostnameOverride: ${NODE_NAME}
bindAddress: ${NS_IP}
clusterCIDR: ${POD_CIDR}
mode: iptables
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
oomScoreAdj: 0
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  syncPeriod: 30s
  minSyncPeriod: 0s
EOF
}

# Every request the API server receives, one JSON line each (who, user agent, verb, resource, when), logged as it
# arrives (stage RequestReceived only, so a watch that is still open is counted too): how benchmarks count the requests
# a client makes, the same way for any client. Rotated at 100 MB, one old file kept.
write_audit_policy() {
    write_if_changed "$AUDIT_POLICY" <<EOF || true
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [ResponseStarted, ResponseComplete, Panic]
rules:
  - level: Metadata
EOF
}

write_configs() {
    mkdir -p "$ETC" "$RUN" "$LOGS"
    write_audit_policy
    write_cni_config
    write_containerd_config
    write_kubelet_config
    write_kubeconfig "$ADMIN_KUBECONFIG" admin "$(token_of admin)"
    write_kubeconfig "$ETC/kubeconfig/controller-manager.kubeconfig" system:kube-controller-manager \
        "$(token_of system:kube-controller-manager)"
    write_kubeconfig "$ETC/kubeconfig/scheduler.kubeconfig" system:kube-scheduler "$(token_of system:kube-scheduler)"
    write_kubeconfig "$ETC/kubeconfig/kubelet.kubeconfig" "system:node:${NODE_NAME}" "$(token_of "system:node:${NODE_NAME}")"
    write_kubeconfig "$ETC/kubeconfig/kube-proxy.kubeconfig" system:kube-proxy "$(token_of system:kube-proxy)"
    write_kube_proxy_config
}

# ---------------------------------------------------------------------------------------------------------
# Processes

pid_is_component() {
    local pid="$1" name="$2" comm exe
    # The kernel's 15-character command name is read without forking, so scanning /proc stays fast.
    read -r comm 2>/dev/null <"/proc/$pid/comm" || return 1
    [[ "$comm" == "${name:0:15}" ]] || return 1
    exe="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 1
    exe="${exe% (deleted)}"
    [[ "${exe##*/}" == "$name" ]] || return 1
    tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$STATE/"
}

# Prints the pid of the running instance of NAME, if any: the pid file is only a hint, and a process that
# lost its pid file is still found.
component_pid() {
    local name="$1" pid proc
    if [[ -f "$RUN/$name.pid" ]]; then
        pid="$(<"$RUN/$name.pid")"
        if [[ -n "$pid" ]] && pid_is_component "$pid" "$name"; then
            echo "$pid"
            return 0
        fi
    fi
    for proc in /proc/[0-9]*; do
        pid="${proc#/proc/}"
        if pid_is_component "$pid" "$name"; then
            echo "$pid" 2>/dev/null >"$RUN/$name.pid" || true
            echo "$pid"
            return 0
        fi
    done
    return 1
}

# The arguments plus the content of every state file they name (not the logs a daemon writes, such as the audit log):
# a change in either means a restart.
fingerprint() {
    local arg file
    for arg in "$@"; do
        echo "$arg"
        file="${arg#*=}"
        if [[ "$file" == "$STATE"/* && "$file" != "$LOGS"/* && -f "$file" ]]; then
            sha256sum "$file"
        fi
    done | sha256sum | cut -c1-64
}

# Closes every descriptor above 2 of the current (sub)shell.
close_inherited_fds() {
    local fd
    for fd in /proc/"$BASHPID"/fd/*; do
        fd="${fd##*/}"
        if ((fd > 2)); then
            eval "exec ${fd}>&-" 2>/dev/null || true
        fi
    done
}

# Starts NAME (argv follows) unless it already runs with the same arguments and configuration.
start_daemon() {
    local name="$1"
    shift
    local wanted pid
    wanted="$(fingerprint "$@")"
    if pid="$(component_pid "$name")"; then
        if [[ ! -f "$RUN/$name.fingerprint" ]]; then
            echo "$wanted" >"$RUN/$name.fingerprint"
            return 0
        fi
        [[ "$(<"$RUN/$name.fingerprint")" == "$wanted" ]] && return 0
        step "restarting $name: its configuration changed"
        stop_component "$name"
    fi
    step "starting $name"
    mkdir -p "$LOGS" "$RUN"
    echo "----- $(date -u +%FT%TZ) start" >>"$LOGS/$name.log"
    # setsid: the daemon outlives this shell and its session; nsenter (not 'ip netns exec', which remounts
    # /sys and breaks the kubelet's cgroup detection) puts it in the cluster's namespace and then execs it.
    # fd 9 is the command lock: a daemon holding it would block every later command. Every other descriptor the
    # caller had open goes too: a daemon that inherits, say, a test runner's `flock` descriptor holds that lock for as
    # long as it runs, and everyone waiting on it waits forever.
    (
        close_inherited_fds
        exec setsid nsenter --net="$NETNS_PATH" -- "$@" >>"$LOGS/$name.log" 2>&1 </dev/null
    ) &
    echo "$!" >"$RUN/$name.pid"
    echo "$wanted" >"$RUN/$name.fingerprint"
}

# Waits until CHECK succeeds; fails early, with the end of the log, if the daemon exits instead.
wait_healthy() {
    local name="$1" timeout="$2"
    shift 2
    local start
    start="$(date +%s)"
    until "$@" >/dev/null 2>&1; do
        # Just after the start the process may still be setsid or nsenter, so only liveness is checked here.
        if ! kill -0 "$(cat "$RUN/$name.pid" 2>/dev/null)" 2>/dev/null; then
            tail -n 25 "$LOGS/$name.log" >&2
            die "$name exited; see $LOGS/$name.log"
        fi
        if (($(date +%s) - start >= timeout)); then
            tail -n 25 "$LOGS/$name.log" >&2
            die "$name not healthy after ${timeout}s; see $LOGS/$name.log"
        fi
        sleep 0.3
    done
}

# SIGTERM, then SIGKILL after GRACE seconds (default 10).
stop_component() {
    local name="$1" grace="${2:-10}" pid i
    pid="$(component_pid "$name")" || {
        rm -f "$RUN/$name.pid"
        return 0
    }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        pid_is_component "$pid" "$name" || break
        sleep 0.1
    done
    if pid_is_component "$pid" "$name"; then
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
    rm -f "$RUN/$name.pid"
}

# An HTTP GET inside the namespace without curl: the insecure health ports answer plain "ok".
http_ok_in_netns() {
    local port="$1" path="$2"
    in_netns bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && printf 'GET $path HTTP/1.0\r\n\r\n' >&3 && grep -q '^ok' <&3"
}

# ---------------------------------------------------------------------------------------------------------
# Components

start_containerd() {
    start_daemon containerd /usr/bin/containerd --config "$ETC/containerd/config.toml"
    wait_healthy containerd 30 ctr --address "$CONTAINERD_SOCK" version
}

start_etcd() {
    start_daemon etcd /usr/bin/etcd \
        --name=hybridbatch \
        --data-dir="$STATE/etcd" \
        --listen-client-urls=http://127.0.0.1:2379 \
        --advertise-client-urls=http://127.0.0.1:2379 \
        --listen-peer-urls=http://127.0.0.1:2380 \
        --initial-advertise-peer-urls=http://127.0.0.1:2380 \
        --initial-cluster=hybridbatch=http://127.0.0.1:2380 \
        --quota-backend-bytes=8589934592
    wait_healthy etcd 60 in_netns env ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:2379 \
        --command-timeout=2s endpoint health
}

start_apiserver() {
    start_daemon kube-apiserver "$KUBE_BIN/kube-apiserver" \
        --advertise-address="$NS_IP" \
        --bind-address=0.0.0.0 \
        --secure-port=6443 \
        --etcd-servers=http://127.0.0.1:2379 \
        --service-cluster-ip-range="$SERVICE_CIDR" \
        --tls-cert-file="$PKI/apiserver.crt" \
        --tls-private-key-file="$PKI/apiserver.key" \
        --client-ca-file="$PKI/ca.crt" \
        --token-auth-file="$TOKENS_FILE" \
        --authorization-mode=Node,RBAC \
        --enable-admission-plugins=NodeRestriction \
        --allow-privileged=true \
        --service-account-key-file="$PKI/sa.pub" \
        --service-account-signing-key-file="$PKI/sa.key" \
        --service-account-issuer=https://kubernetes.default.svc.cluster.local \
        --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
        --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
        --kubelet-preferred-address-types=InternalIP \
        --feature-gates=TTLAfterFinished=true \
        --default-not-ready-toleration-seconds=30 \
        --default-unreachable-toleration-seconds=30 \
        --profiling=false \
        --audit-policy-file="$AUDIT_POLICY" \
        --audit-log-path="$AUDIT_LOG" \
        --audit-log-format=json \
        --audit-log-maxsize=100 \
        --audit-log-maxbackup=1
    wait_healthy kube-apiserver 90 admin_kubectl get --raw /readyz
}

start_controller_manager() {
    start_daemon kube-controller-manager "$KUBE_BIN/kube-controller-manager" \
        --kubeconfig="$ETC/kubeconfig/controller-manager.kubeconfig" \
        --use-service-account-credentials=true \
        --controllers='*,-nodeipam' \
        --root-ca-file="$PKI/ca.crt" \
        --service-account-private-key-file="$PKI/sa.key" \
        --cluster-signing-cert-file="$PKI/ca.crt" \
        --cluster-signing-key-file="$PKI/ca.key" \
        --leader-elect=false \
        --kube-api-qps=100 \
        --kube-api-burst=200 \
        --feature-gates=TTLAfterFinished=true \
        --node-monitor-grace-period=20s \
        --pod-eviction-timeout=30s \
        --node-eviction-rate=10 \
        --bind-address=127.0.0.1 \
        --address=127.0.0.1 \
        --port=10252
    wait_healthy kube-controller-manager 60 http_ok_in_netns 10252 /healthz
}

start_scheduler() {
    start_daemon kube-scheduler "$KUBE_BIN/kube-scheduler" \
        --kubeconfig="$ETC/kubeconfig/scheduler.kubeconfig" \
        --leader-elect=false \
        --bind-address=127.0.0.1 \
        --address=127.0.0.1 \
        --port=10251
    wait_healthy kube-scheduler 60 http_ok_in_netns 10251 /healthz
}

start_kubelet() {
    mkdir -p "$STATE/kubelet"
    start_daemon kubelet "$KUBE_BIN/kubelet" \
        --config="$ETC/kubelet/config.yaml" \
        --kubeconfig="$ETC/kubeconfig/kubelet.kubeconfig" \
        --container-runtime=remote \
        --container-runtime-endpoint="unix://$CONTAINERD_SOCK" \
        --image-service-endpoint="unix://$CONTAINERD_SOCK" \
        --root-dir="$STATE/kubelet" \
        --hostname-override="$NODE_NAME" \
        --node-ip="$NS_IP" \
        --node-labels=hybridbatch.io/local-cluster=true
    wait_healthy kubelet 60 http_ok_in_netns 10248 /healthz
}

# Healthy once it serves and has written the rules of the API server's own Service, which pods use to reach it.
kube_proxy_serving() {
    http_ok_in_netns 10249 /healthz &&
        in_netns iptables -w 5 -t nat -S KUBE-SERVICES | grep -qF -- "-d ${SERVICE_IP}/32"
}

start_kube_proxy() {
    start_daemon kube-proxy "$KUBE_BIN/kube-proxy" --config="$ETC/kube-proxy/config.yaml"
    wait_healthy kube-proxy 60 kube_proxy_serving
}

process_start_epoch() {
    date -d "$(ps -o lstart= -p "$1")" +%s
}

# After a restart the Node object in etcd still says Ready from before; only a heartbeat newer than the
# kubelet's start proves the running kubelet is healthy. The node.kubernetes.io taints must be gone too, or
# the first pods wait for the node controller.
node_ready_since() {
    local since="$1"
    admin_kubectl get node "$NODE_NAME" -o json | jq -e --argjson since "$since" '
        ([.status.conditions[] | select(.type == "Ready")
          | .status == "True" and ((.lastHeartbeatTime | fromdateiso8601) >= $since)] | any)
        and ([(.spec.taints // [])[] | select(.key | startswith("node.kubernetes.io/"))] | length == 0)'
}

kubelet_ready() {
    local pid
    pid="$(component_pid kubelet)" || return 1
    node_ready_since "$(process_start_epoch "$pid")"
}

wait_node_ready() {
    kubelet_ready >/dev/null 2>&1 && return 0
    step "waiting for node $NODE_NAME to be Ready"
    wait_for "node $NODE_NAME Ready" 120 kubelet_ready || {
        tail -n 25 "$LOGS/kubelet.log" >&2
        die "node $NODE_NAME not Ready after 120s; see $LOGS/kubelet.log"
    }
}

# ---------------------------------------------------------------------------------------------------------
# Stopping and wiping

# cgroup v1 and v2 layouts of the kubelet's pod cgroups.
pod_cgroup_procs() {
    find /sys/fs/cgroup/memory/kubepods /sys/fs/cgroup/kubepods -name cgroup.procs -exec cat {} + 2>/dev/null || true
}

kill_pod_processes() {
    local pids i
    for ((i = 0; i < 20; i++)); do
        mapfile -t pids < <(pod_cgroup_procs)
        ((${#pids[@]} == 0)) && return 0
        kill -KILL "${pids[@]}" 2>/dev/null || true
        sleep 0.25
    done
}

kill_shims() {
    local proc pid
    for proc in /proc/[0-9]*; do
        pid="${proc#/proc/}"
        if [[ "$(readlink "$proc/exe" 2>/dev/null)" == */containerd-shim-runc-v2 ]] &&
            tr '\0' '\n' <"$proc/cmdline" 2>/dev/null | grep -qxF -- "$CONTAINERD_SOCK"; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
}

stop_all() {
    local name
    for name in kube-proxy kubelet kube-scheduler kube-controller-manager kube-apiserver etcd; do
        if component_pid "$name" >/dev/null; then
            step "stopping $name"
            if [[ "$name" == kube-apiserver ]]; then
                # It stops serving at once but then retries removing its endpoint for many seconds; all its state
                # is in etcd, so a kill loses nothing.
                stop_component "$name" 2
            else
                stop_component "$name"
            fi
        fi
    done
    # Pods' containers go too: a stopped cluster should not keep running jobs nobody watches.
    if [[ -n "$(pod_cgroup_procs)" ]]; then
        step "stopping pod containers"
        kill_pod_processes
        # Let containerd record the exits before it stops.
        sleep 1
    fi
    if component_pid containerd >/dev/null; then
        step "stopping containerd"
        stop_component containerd
    fi
    kill_shims
}

remove_leftovers() {
    local target
    # Container root filesystems, pod network namespaces and volumes mounted below the state directory.
    while read -r target; do
        umount -l "$target" 2>/dev/null || true
    done < <(findmnt -rn -o TARGET | grep -F "$STATE/" | sort -r)
}

wipe_state() {
    step "wiping $STATE"
    rm -rf "$STATE"
}

# ---------------------------------------------------------------------------------------------------------
# Status

print_status() {
    local name pid ready=1
    for name in "${COMPONENTS[@]}"; do
        if pid="$(component_pid "$name" 2>/dev/null)"; then
            printf '%-24s running (pid %s)\n' "$name" "$pid"
        else
            printf '%-24s stopped\n' "$name"
            ready=0
        fi
    done
    if [[ -n "${KUBE_BIN:-}" ]] && ((ready)) && kubelet_ready >/dev/null 2>&1; then
        printf '%-24s Ready\n' "node $NODE_NAME"
    else
        printf '%-24s not Ready\n' "node $NODE_NAME"
        ready=0
    fi
    printf '%-24s %s\n' "API server" "$API_URL"
    printf '%-24s %s\n' "kubeconfig" "$(least_privileged_kubeconfig)"
    printf '%-24s %s\n' "admin kubeconfig" "$ADMIN_KUBECONFIG"
    ((ready))
}
