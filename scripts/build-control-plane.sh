#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, etcd and helm, and the node's kubelet, kube-scheduler,
# kube-proxy and kubectl, from the upstream Go modules through the Go module proxy, into the cache
# directory. Only what is missing is built; a lock makes two concurrent callers safe (the second waits,
# then finds the binaries). See docs/adr/0001 and docs/adr/0710.
set -euo pipefail

K8S_VERSION="${LANYARD_K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${LANYARD_ETCD_VERSION:-v3.6.13}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${LANYARD_K8S_CACHE:-$HOME/.cache/lanyard/k8s}/$K8S_VERSION"

log() { printf '[control-plane build] %s\n' "$*" >&2; }

HELM_VERSION="${LANYARD_HELM_VERSION:-v3.22.0}"
helm_dir="${LANYARD_K8S_CACHE:-$HOME/.cache/lanyard/k8s}/../tools/helm-$HELM_VERSION"

# Every binary of the k8s-testbin wrapper module (its `tool` block), built by one `go build`.
k8s_binaries=(kube-apiserver kube-controller-manager kubelet kube-scheduler kube-proxy kubectl)

missing_k8s() {
  local b
  for b in "${k8s_binaries[@]}"; do [ -x "$out/$b" ] || echo "$b"; done
}

have_all() {
  [ -z "$(missing_k8s)" ] && [ -x "$out/etcd" ] && [ -x "$helm_dir/helm" ]
}

if have_all; then exit 0; fi

if ! command -v go >/dev/null 2>&1; then
  log "Go is not installed. Lanyard builds its test control plane (kube-apiserver, etcd, kube-controller-manager)"
  log "from the upstream Go modules; install Go >= 1.26 (https://go.dev/doc/install) and run this again."
  exit 3
fi

mkdir -p "$out"
exec 9>"$out/.build.lock"
if ! flock -n 9; then
  log "another process is building the control plane; waiting for it (lock $out/.build.lock)"
  flock 9
fi
if have_all; then log "binaries are ready (built by the other process)"; exit 0; fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
start=$(date +%s)

mapfile -t todo < <(missing_k8s)
if [ "${#todo[@]}" -gt 0 ]; then
  log "building ${todo[*]} $K8S_VERSION (cold build of all of them: 20-40 minutes on 2 cores)"
  cd "$here/tools/k8s-testbin"
  log "resolving modules (go mod download)"
  go mod download -x 2>&1 | grep -E '^# get .*\.zip$' | sed -E 's/^# get (.*)$/  fetch \1/' >&2 || true
  ldf="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf="$ldf -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldf="$ldf -X $pkg.gitCommit=0000000000000000000000000000000000000000 -X $pkg.gitTreeState=clean"
    ldf="$ldf -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  log "compiling (progress: one line per package group)"
  go build -trimpath -v -ldflags "$ldf" -o "$out/.tmp-k8s/" "${todo[@]/#/k8s.io/kubernetes/cmd/}" 2>&1 \
    | awk '{ n++; if (n % 200 == 0) { printf "  %d packages compiled (last: %s)\n", n, $0; fflush() } }' >&2
  for b in "${todo[@]}"; do mv "$out/.tmp-k8s/$b" "$out/"; done
  rmdir "$out/.tmp-k8s"
fi

if [ ! -x "$out/etcd" ]; then
  log "building etcd $ETCD_VERSION"
  cd "$here/tools/etcd-testbin"
  go build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" \
    -o "$out/.etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$out/.etcd.tmp" "$out/etcd"
fi

if [ ! -x "$helm_dir/helm" ]; then
  # helm renders the chart in the chart tests (helm template, then a server-side dry-run against the real API server).
  log "building helm $HELM_VERSION"
  mkdir -p "$helm_dir"
  (cd "$(mktemp -d)" && GOBIN="$helm_dir" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION")
fi

log "done in $(( $(date +%s) - start ))s: $(ls "$out" | tr '\n' ' ')"
