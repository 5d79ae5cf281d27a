# Debian packages and the Kubernetes binaries built from Debian's source package.
# shellcheck shell=bash

# Runtime pieces and build tools, all from Debian. reflect2 1.0.2 replaces the vendored 1.0.1, which corrupts
# memory on Go >= 1.18 (the API server dies in mapiterinit after a few minutes).
REQUIRED_PACKAGES=(
    busybox-static containerd containernetworking-plugins conntrack etcd-client etcd-server gcc
    golang-github-modern-go-reflect2-dev golang-go iproute2 iptables jq libc6-dev make openssl patch procps
    rsync runc util-linux
)
KUBE_COMPONENTS=(kube-apiserver kube-scheduler kube-controller-manager kubelet kube-proxy kubectl)
DEB_SRC_NAME="hybridbatch-deb-src.sources"

# Where apt reads its sources from. Asked of apt rather than assumed, so an APT_CONFIG or -o Dir::… setting (a
# throw-away apt state, a chroot's) is honoured by every step here.
apt_source_list() {
    local L
    eval "$(apt-config shell L Dir::Etc::sourcelist/f)"
    echo "$L"
}
apt_source_parts() {
    local D
    eval "$(apt-config shell D Dir::Etc::sourceparts/d)"
    echo "${D%/}"
}

# The cache holds the build, its log and apt's log; a read-only or missing home must say so, not fail in mkdir.
require_writable_cache() {
    if ! mkdir -p "$CACHE_ROOT" 2>/dev/null || [[ ! -w "$CACHE_ROOT" ]]; then
        die "cannot write the build cache $CACHE_ROOT: set XDG_CACHE_HOME (or HOME) to a writable folder, or use another cluster by giving a kubeconfig (--kubeconfig or KUBECONFIG)"
    fi
}

APT_UPDATED=0
apt_update_once() {
    if ((APT_UPDATED == 0)); then
        step "apt-get update"
        # A source that cannot be fetched is an error here, not apt's warning: the build needs what it would list.
        run_with_progress "apt-get update" "$CACHE_ROOT/apt.log" apt-get update --error-on=any
        APT_UPDATED=1
    fi
}

missing_packages() {
    # A dry run (HYBRIDBATCH_APT_SIMULATE=1) acts as a machine that has none of them.
    if [[ "${HYBRIDBATCH_APT_SIMULATE:-0}" == 1 ]]; then
        printf '%s\n' "${REQUIRED_PACKAGES[@]}"
        return 0
    fi
    local installed
    installed="$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "${REQUIRED_PACKAGES[@]}" 2>/dev/null |
        awk '$1 == "ii" {print $2}')" || true
    comm -23 <(printf '%s\n' "${REQUIRED_PACKAGES[@]}" | sort) <(sort <<<"$installed")
}

ensure_packages() {
    local missing
    mapfile -t missing < <(missing_packages)
    ((${#missing[@]} == 0)) && return 0
    step "installing ${missing[*]}"
    require_writable_cache
    apt_update_once
    if [[ "${HYBRIDBATCH_APT_SIMULATE:-0}" == 1 ]]; then
        # The dry run resolves every package to a download from the index, and installs nothing.
        run_with_progress "apt-get download --print-uris" "$CACHE_ROOT/apt.log" apt-get download --print-uris "${missing[@]}"
        return 0
    fi
    # Debian would start etcd and containerd as host services; the cluster runs its own inside the namespace.
    run_with_progress "apt-get install" "$CACHE_ROOT/apt.log" \
        env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    stop_host_services_started_by_apt
}

stop_host_services_started_by_apt() {
    local service
    for service in etcd containerd; do
        if command -v service >/dev/null && service "$service" status >/dev/null 2>&1; then
            service "$service" stop >/dev/null 2>&1 || true
        fi
    done
}

has_deb_src() {
    grep -rqsE '^(Types:.*deb-src|deb-src )' "$(apt_source_list)" "$(apt_source_parts)/"
}

# The kubernetes source package is only reachable through a deb-src entry; derive it from the machine's own
# Debian source (same mirror and keyring) so it also works behind a local mirror.
ensure_deb_src() {
    has_deb_src && return 0
    local parts file
    parts="$(apt_source_parts)"
    file="$parts/$DEB_SRC_NAME"
    step "adding a deb-src entry for bookworm ($file)"
    if [[ -f "$parts/debian.sources" ]]; then
        sed -e 's/^Types:.*/Types: deb-src/' "$parts/debian.sources" >"$file"
    else
        cat >"$file" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
    # A new source has no index until the next update.
    APT_UPDATED=0
}

# The newest version of the kubernetes source package apt knows, or nothing. apt-cache fails (exit 100) when
# the source index has not been downloaded yet, which is the normal state of a new machine, not an error.
kubernetes_source_version() {
    local output
    output="$(apt-cache showsrc kubernetes 2>&1)" || return 0
    awk '/^Version:/ {print $2}' <<<"$output" | sort -V | tail -n1
}

# Adds the deb-src entry if needed, updates the index if it does not know the source package yet, and sets
# KUBE_SOURCE_VERSION to the version to build (not printed from a subshell: the update must be remembered).
resolve_kubernetes_source() {
    ensure_deb_src
    KUBE_SOURCE_VERSION="$(kubernetes_source_version)"
    if [[ -z "$KUBE_SOURCE_VERSION" ]]; then
        apt_update_once
        KUBE_SOURCE_VERSION="$(kubernetes_source_version)"
    fi
    if [[ -z "$KUBE_SOURCE_VERSION" ]]; then
        apt-cache showsrc kubernetes >&2 || true
        die "apt knows no 'kubernetes' source package after an update (apt-cache's answer is above); the deb-src entries are in $(apt_source_parts)"
    fi
}

binaries_complete() {
    local bin="$1" component
    for component in "${KUBE_COMPONENTS[@]}" pause; do
        [[ -x "$bin/$component" ]] || return 1
    done
}

# The components a cached build of BIN lacks (one that predates a component added here).
missing_components() {
    local bin="$1" component
    for component in "${KUBE_COMPONENTS[@]}"; do
        [[ -x "$bin/$component" ]] || echo "$component"
    done
}

# The newest complete build in the cache, so a warm 'up' never needs apt.
locate_cached_binaries() {
    local dir
    KUBE_BIN=""
    [[ -d "$BUILD_CACHE" ]] || return 1
    while read -r dir; do
        if binaries_complete "$BUILD_CACHE/$dir/bin"; then
            KUBE_BIN="$BUILD_CACHE/$dir/bin"
        fi
    done < <(find "$BUILD_CACHE" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -V)
    [[ -n "$KUBE_BIN" ]]
}

ensure_kubernetes_binaries() {
    locate_cached_binaries && return 0
    require_writable_cache
    resolve_kubernetes_source
    build_kubernetes "$KUBE_SOURCE_VERSION"
    locate_cached_binaries || die "build finished but binaries are missing in $BUILD_CACHE/$KUBE_SOURCE_VERSION/bin"
}

# Builds the binaries of VERSION into the cache. A cached build of the same version that only lacks some components
# (say, one made before kube-proxy was needed) gets just those, added one file at a time: a running cluster executes
# the binaries beside them, and other checkouts may be using that directory.
build_kubernetes() {
    local version="$1"
    local dir="$BUILD_CACHE/$version"
    local work="$dir/build"
    local src="$work/src"
    local log="$dir/build.log"
    local -a components=("${KUBE_COMPONENTS[@]}")
    local partial_build=0
    if [[ -x "$dir/bin/pause" ]]; then
        mapfile -t components < <(missing_components "$dir/bin")
        ((${#components[@]} > 0)) || return 0
        partial_build=1
    fi
    rm -rf "$work" "$dir/bin.partial"
    mkdir -p "$work/home" "$src" "$dir/bin.partial"
    # Source, generated code and the Go build cache take about 3 GB until the build is done.
    local free_gb
    free_gb="$(df --output=avail -BG "$work" | tail -n1 | tr -dc '0-9')"
    ((free_gb >= 4)) || die "building Kubernetes needs 4 GB free under $work; only ${free_gb} GB are"

    step "downloading Debian source package kubernetes $version"
    (cd "$work" && quietly apt-get source -qq --download-only "kubernetes=$version")
    tar -xzf "$work"/kubernetes_*.orig.tar.gz -C "$src" --strip-components=1
    tar -xJf "$work"/kubernetes_*.debian.tar.xz -C "$src"
    apply_debian_patches "$src"
    replace_reflect2 "$src"

    if ((partial_build)); then
        step "building ${components[*]}, missing from the cached build $dir/bin (several minutes on 2 cores; log: $log)"
    else
        step "building ${components[*]} (about 10 minutes on 2 cores; log: $log)"
    fi
    # The build writes its Go cache into the tree and wants a writable HOME; CGO off gives static binaries.
    (cd "$src" && run_with_progress "building" "$log" \
        env HOME="$work/home" CGO_ENABLED=0 GOPROXY=off make WHAT="${components[*]/#/cmd/}")

    local component
    for component in "${components[@]}"; do
        cp "$src/_output/bin/$component" "$dir/bin.partial/"
    done
    if ((partial_build)); then
        for component in "${components[@]}"; do
            mv "$dir/bin.partial/$component" "$dir/bin/$component"
        done
        rm -rf "$dir/bin.partial"
    else
        # The pod sandbox image runs this tiny program; same flags as the upstream image build.
        gcc -Os -Wall -Werror -static -DVERSION=v3.2-hybridbatch -o "$dir/bin.partial/pause" "$src/build/pause/linux/pause.c"
        rm -rf "$dir/bin"
        mv "$dir/bin.partial" "$dir/bin"
    fi
    # The tree holds a 1.7 GB Go cache; the binaries are all that later runs need.
    rm -rf "$work"
    step "built ${components[*]} of Kubernetes $version into $dir/bin"
}

apply_debian_patches() {
    local src="$1" patch_name
    [[ -f "$src/debian/patches/series" ]] || return 0
    while read -r patch_name; do
        [[ -z "$patch_name" || "$patch_name" == \#* ]] && continue
        patch -d "$src" -p1 -s --forward <"$src/debian/patches/$patch_name" || die "Debian patch $patch_name does not apply"
    done <"$src/debian/patches/series"
}

replace_reflect2() {
    local src="$1"
    local vendored="$src/vendor/github.com/modern-go/reflect2"
    local debian=/usr/share/gocode/src/github.com/modern-go/reflect2
    # Remove first: copying over the old tree would keep 1.0.1's go_above_17.go, which redefines a function.
    rm -rf "$vendored"
    mkdir -p "$vendored"
    find "$debian" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' -exec cp {} "$vendored/" \;
}

# Runs a long, quiet command with its output in LOG, printing a line every 5 s (with the log's last line), so
# neither a user nor CI watches a silent terminal for minutes. Fails with the end of the log.
run_with_progress() {
    local what="$1" log="$2"
    shift 2
    mkdir -p "$(dirname "$log")"
    "$@" >"$log" 2>&1 &
    local pid=$! last waited=0
    while kill -0 "$pid" 2>/dev/null; do
        sleep 1
        waited=$((waited + 1))
        if ((waited % 5 == 0)) && kill -0 "$pid" 2>/dev/null; then
            last="$(tail -n1 "$log" 2>/dev/null | tr -s ' \t' ' ' | cut -c1-100)"
            step "  ${what}… ${last}"
        fi
    done
    if ! wait "$pid"; then
        tail -n 30 "$log" >&2
        die "$what failed; see $log"
    fi
}
