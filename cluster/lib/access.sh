# The product's least-privileged identity (ServiceAccount hybridbatch/hybridbatch) and its kubeconfig.
# shellcheck shell=bash

RBAC_MANIFEST="$CLUSTER_DIR/manifests/hybridbatch-rbac.yaml"

least_privileged_kubeconfig() {
    echo "$APP_KUBECONFIG"
}

# On 1.20 the token controller creates a token Secret for every ServiceAccount.
service_account_token() {
    local secret
    secret="$(admin_kubectl -n hybridbatch get serviceaccount hybridbatch -o jsonpath='{.secrets[0].name}')"
    [[ -n "$secret" ]] || return 1
    admin_kubectl -n hybridbatch get secret "$secret" -o jsonpath='{.data.token}' | base64 -d
}

# Pods are refused until the namespace's default ServiceAccount exists.
namespace_ready() {
    admin_kubectl -n hybridbatch get serviceaccount default -o name &&
        [[ -n "$(service_account_token)" ]]
}

ensure_access() {
    local output
    output="$(admin_kubectl apply -f "$RBAC_MANIFEST" 2>&1)" || die "applying $RBAC_MANIFEST failed: $output"
    wait_for "ServiceAccount hybridbatch and its token" 60 namespace_ready ||
        die "no token for ServiceAccount hybridbatch/hybridbatch; see $LOGS/kube-controller-manager.log"
    if write_kubeconfig_changed; then
        step "wrote least-privileged kubeconfig $APP_KUBECONFIG"
    fi
}

write_kubeconfig_changed() {
    local before=""
    [[ -f "$APP_KUBECONFIG" ]] && before="$(sha256sum <"$APP_KUBECONFIG")"
    write_kubeconfig "$APP_KUBECONFIG" hybridbatch "$(service_account_token)" hybridbatch
    [[ "$before" != "$(sha256sum <"$APP_KUBECONFIG")" ]]
}
