# Certificates, keys and static tokens of the cluster. Created once; 'reset' deletes them.
# shellcheck shell=bash

TOKENS_FILE="$PKI/tokens.csv"

# Signs a certificate with the cluster CA. SUBJECT is an openssl -subj string; SANS an extension value or "".
issue_certificate() {
    local name="$1" subject="$2" sans="$3" usage="$4"
    [[ -f "$PKI/$name.crt" && -f "$PKI/$name.key" ]] && return 0
    local ext
    ext="$(mktemp)"
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$usage"
        [[ -n "$sans" ]] && echo "subjectAltName=$sans"
    } >"$ext"
    quietly openssl req -new -newkey rsa:2048 -nodes -keyout "$PKI/$name.key.partial" -subj "$subject" \
        -out "$PKI/$name.csr"
    quietly openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
        -days 3650 -sha256 -extfile "$ext" -out "$PKI/$name.crt.partial"
    rm -f "$ext" "$PKI/$name.csr"
    chmod 600 "$PKI/$name.key.partial"
    mv "$PKI/$name.key.partial" "$PKI/$name.key"
    mv "$PKI/$name.crt.partial" "$PKI/$name.crt"
}

ensure_pki() {
    mkdir -p "$PKI"
    chmod 700 "$PKI"
    if [[ ! -f "$PKI/ca.crt" || ! -f "$PKI/ca.key" ]]; then
        step "creating the cluster CA and certificates in $PKI"
        # A new CA invalidates everything signed by the old one.
        rm -f "$PKI"/*.crt "$PKI"/*.key
        quietly openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 -subj "/CN=hybridbatch-local-ca" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
            -keyout "$PKI/ca.key.partial" -out "$PKI/ca.crt.partial"
        chmod 600 "$PKI/ca.key.partial"
        mv "$PKI/ca.key.partial" "$PKI/ca.key"
        mv "$PKI/ca.crt.partial" "$PKI/ca.crt"
    fi
    local api_sans="IP:${NS_IP},IP:127.0.0.1,IP:${SERVICE_IP},DNS:localhost,DNS:${NODE_NAME},DNS:kubernetes"
    api_sans+=",DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    issue_certificate apiserver "/CN=kube-apiserver" "$api_sans" serverAuth
    # The API server proves itself to the kubelet (logs, exec) with this; the kubelet trusts only the cluster CA.
    issue_certificate apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "" clientAuth
    issue_certificate kubelet "/CN=${NODE_NAME}" "IP:${NS_IP},IP:127.0.0.1,DNS:${NODE_NAME}" serverAuth
    if [[ ! -f "$PKI/sa.key" ]]; then
        quietly openssl genrsa -out "$PKI/sa.key.partial" 2048
        chmod 600 "$PKI/sa.key.partial"
        mv "$PKI/sa.key.partial" "$PKI/sa.key"
    fi
    [[ -f "$PKI/sa.pub" ]] || quietly openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"
    ensure_tokens
}

random_token() {
    openssl rand -hex 24
}

# The users of the static tokens, each with its groups: the admin and the control-plane components (the kubelet
# must be user system:node:NAME in group system:nodes for the Node authorizer; system:kube-proxy is bound to
# system:node-proxier by a bootstrap ClusterRoleBinding).
TOKEN_USERS=(
    "admin,admin,system:masters"
    "system:kube-controller-manager,system:kube-controller-manager"
    "system:kube-scheduler,system:kube-scheduler"
    "system:node:${NODE_NAME},system:node:${NODE_NAME},system:nodes"
    "system:kube-proxy,system:kube-proxy"
)

# Creates the token file, or adds the users a file from an older version of this script lacks, keeping every
# existing token (the running components and the kubeconfigs hold them). The API server reads the file only at
# start; its fingerprint covers the file, so 'up' restarts it after a change.
ensure_tokens() {
    local entry user added=0
    {
        [[ -f "$TOKENS_FILE" ]] && cat "$TOKENS_FILE"
        for entry in "${TOKEN_USERS[@]}"; do
            user="${entry%%,*}"
            if [[ ! -f "$TOKENS_FILE" ]] || [[ -z "$(token_of "$user")" ]]; then
                echo "$(random_token),$entry"
                added=1
            fi
        done
    } >"$TOKENS_FILE.partial"
    if ((added == 0)); then
        rm -f "$TOKENS_FILE.partial"
        return 0
    fi
    chmod 600 "$TOKENS_FILE.partial"
    mv "$TOKENS_FILE.partial" "$TOKENS_FILE"
}

token_of() {
    awk -F, -v user="$1" '$2 == user {print $1}' "$TOKENS_FILE"
}
