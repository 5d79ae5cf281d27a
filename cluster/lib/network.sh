# The cluster's network namespace: a veth pair to the host and no default route, so nothing inside can reach
# beyond this machine. Pods get addresses on a CNI bridge inside the namespace.
# shellcheck shell=bash

in_netns() {
    nsenter --net="$NETNS_PATH" -- "$@"
}

netns_usable() {
    [[ -e "$NETNS_PATH" ]] && in_netns true 2>/dev/null
}

ensure_network() {
    if ! netns_usable; then
        # A namespace file left behind by a crash or a reboot is no longer a mount of a live namespace.
        ip netns delete "$NETNS" 2>/dev/null || rm -f "$NETNS_PATH"
        step "creating network namespace $NETNS"
        ip netns add "$NETNS"
    fi
    # Both ends must exist and be a pair; anything else (one end left from an older namespace) is rebuilt.
    if ! ip link show "$HOST_VETH" >/dev/null 2>&1 || ! in_netns ip link show "$NS_VETH" >/dev/null 2>&1; then
        ip link delete "$HOST_VETH" 2>/dev/null || true
        in_netns ip link delete "$NS_VETH" 2>/dev/null || true
        step "creating veth $HOST_VETH ($HOST_IP) <-> $NS_VETH ($NS_IP)"
        ip link add "$HOST_VETH" type veth peer name "$NS_VETH" netns "$NETNS"
    fi
    ip addr replace "$HOST_IP/30" dev "$HOST_VETH"
    ip link set "$HOST_VETH" up
    in_netns ip addr replace "$NS_IP/30" dev "$NS_VETH"
    in_netns ip link set "$NS_VETH" up
    in_netns ip link set lo up
    # Only the link route to the host exists; drop any default route someone may have added.
    in_netns ip route del default 2>/dev/null || true
}

remove_network() {
    ip link delete "$HOST_VETH" 2>/dev/null || true
    ip netns delete "$NETNS" 2>/dev/null || true
    rm -f "$NETNS_PATH"
}

write_cni_config() {
    write_if_changed "$ETC/cni/net.d/10-hybridbatch.conflist" <<EOF || true
{
  "cniVersion": "0.4.0",
  "name": "hybridbatch",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "${CNI_BRIDGE}",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "${STATE}/cni/networks",
        "ranges": [[{"subnet": "${POD_CIDR}"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
EOF
}
