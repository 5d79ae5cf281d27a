# The images pods run: nothing can be pulled here, so they are built locally as OCI archives and imported.
# shellcheck shell=bash

IMAGE_CACHE="$CACHE_ROOT/images"

# Builds a single-layer OCI image archive from ROOTFS. Tar and gzip are deterministic (fixed owner, order and
# mtime), so the same input gives the same digest and a re-import changes nothing.
build_oci_archive() {
    local name="$1" rootfs="$2" config_json="$3" out="$4"
    local tmp
    tmp="$(mktemp -d)"
    mkdir -p "$tmp/blobs/sha256"

    tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 -C "$rootfs" -cf "$tmp/layer.tar" .
    local diff_id layer_digest layer_size
    diff_id="$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)"
    gzip -n -9 <"$tmp/layer.tar" >"$tmp/layer.tar.gz"
    layer_digest="$(sha256sum "$tmp/layer.tar.gz" | cut -d' ' -f1)"
    layer_size="$(stat -c %s "$tmp/layer.tar.gz")"
    mv "$tmp/layer.tar.gz" "$tmp/blobs/sha256/$layer_digest"
    rm "$tmp/layer.tar"

    jq -cn --argjson config "$config_json" --arg diff "sha256:$diff_id" '{
        architecture: "amd64", os: "linux", created: "1970-01-01T00:00:00Z",
        config: $config, rootfs: {type: "layers", diff_ids: [$diff]}
    }' >"$tmp/config.json"
    local config_digest config_size
    config_digest="$(sha256sum "$tmp/config.json" | cut -d' ' -f1)"
    config_size="$(stat -c %s "$tmp/config.json")"
    mv "$tmp/config.json" "$tmp/blobs/sha256/$config_digest"

    jq -cn --arg cd "sha256:$config_digest" --argjson cs "$config_size" \
        --arg ld "sha256:$layer_digest" --argjson ls "$layer_size" '{
        schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
        layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $ld, size: $ls}]
    }' >"$tmp/manifest.json"
    local manifest_digest manifest_size
    manifest_digest="$(sha256sum "$tmp/manifest.json" | cut -d' ' -f1)"
    manifest_size="$(stat -c %s "$tmp/manifest.json")"
    mv "$tmp/manifest.json" "$tmp/blobs/sha256/$manifest_digest"

    jq -cn --arg md "sha256:$manifest_digest" --argjson ms "$manifest_size" --arg name "$name" '{
        schemaVersion: 2,
        manifests: [{
            mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $md, size: $ms,
            annotations: {"io.containerd.image.name": $name, "org.opencontainers.image.ref.name": ($name | sub(".*:"; ""))}
        }]
    }' >"$tmp/index.json"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$tmp/oci-layout"

    mkdir -p "$(dirname "$out")"
    tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 -C "$tmp" -cf "$out.partial" oci-layout index.json blobs
    mv "$out.partial" "$out"
    rm -rf "$tmp"
}

# The host's busybox-static as ROOTFS/bin/busybox, with every applet linked to it.
add_busybox() {
    local rootfs="$1" applet
    mkdir -p "$rootfs/bin"
    cp /bin/busybox "$rootfs/bin/busybox"
    while read -r applet; do
        [[ "$applet" == bin/busybox ]] && continue
        mkdir -p "$rootfs/$(dirname "$applet")"
        ln -sf /bin/busybox "$rootfs/$applet"
    done < <(/bin/busybox --list-full)
}

# busybox with every applet linked, named like Docker Hub's image so the product's default image 'busybox:1.35'
# resolves here and on a real cluster alike.
build_busybox_archive() {
    local out="$1" rootfs
    rootfs="$(mktemp -d)"
    mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,root,proc,sys,dev,home,var/tmp,tmp,run/lock}
    chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
    add_busybox "$rootfs"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
    build_oci_archive "$BUSYBOX_IMAGE" "$rootfs" \
        '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]}' "$out"
    rm -rf "$rootfs"
}

# Nothing but busybox and its applets: no /etc, no /tmp, no /var/tmp, like a minimal image built FROM scratch. Jobs
# in it show that the scratch volume, not the image, gives TMPDIR a directory.
build_minimal_archive() {
    local out="$1" rootfs
    rootfs="$(mktemp -d)"
    add_busybox "$rootfs"
    build_oci_archive "$MINIMAL_IMAGE" "$rootfs" \
        '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]}' "$out"
    rm -rf "$rootfs"
}

build_pause_archive() {
    local out="$1" rootfs
    rootfs="$(mktemp -d)"
    cp "$KUBE_BIN/pause" "$rootfs/pause"
    build_oci_archive "$SANDBOX_IMAGE" "$rootfs" '{"Entrypoint":["/pause"]}' "$out"
    rm -rf "$rootfs"
}

busybox_archive() {
    local version
    version="$(dpkg-query -W -f='${Version}' busybox-static)"
    echo "$IMAGE_CACHE/busybox-${version//:/_}.oci.tar"
}

minimal_archive() {
    local version
    version="$(dpkg-query -W -f='${Version}' busybox-static)"
    echo "$IMAGE_CACHE/busybox-minimal-${version//:/_}.oci.tar"
}

pause_archive() {
    echo "$(dirname "$KUBE_BIN")/pause.oci.tar"
}

ensure_image_archives() {
    local busybox minimal pause
    busybox="$(busybox_archive)"
    minimal="$(minimal_archive)"
    pause="$(pause_archive)"
    if [[ ! -f "$busybox" || ! -f "$minimal" || ! -f "$pause" ]]; then
        require_writable_cache
    fi
    if [[ ! -f "$busybox" ]]; then
        step "building image $BUSYBOX_IMAGE"
        build_busybox_archive "$busybox"
    fi
    if [[ ! -f "$minimal" ]]; then
        step "building image $MINIMAL_IMAGE"
        build_minimal_archive "$minimal"
    fi
    if [[ ! -f "$pause" ]]; then
        step "building image $SANDBOX_IMAGE"
        build_pause_archive "$pause"
    fi
}

ctr_k8s() {
    ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"
}

# Imported again whenever missing (a reset, or a garbage collection that slipped through), since a pull can
# never succeed here.
ensure_images_imported() {
    local present
    present="$(ctr_k8s images ls -q)"
    if ! grep -qxF "$SANDBOX_IMAGE" <<<"$present"; then
        step "importing $SANDBOX_IMAGE"
        ctr_k8s images import "$(pause_archive)" >/dev/null
    fi
    if ! grep -qxF "$BUSYBOX_IMAGE" <<<"$present"; then
        step "importing $BUSYBOX_IMAGE"
        ctr_k8s images import "$(busybox_archive)" >/dev/null
    fi
    if ! grep -qxF "$MINIMAL_IMAGE" <<<"$present"; then
        step "importing $MINIMAL_IMAGE"
        ctr_k8s images import "$(minimal_archive)" >/dev/null
    fi
}
