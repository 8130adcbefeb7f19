#!/usr/bin/env bash
# Builds tools/argocd-health (Argo CD's own health evaluation, docs/gitops.md) from the Argo CD Go module through the
# Go module proxy into the cache, only when the cache lacks it, and prints the binary's path. The cache key holds the
# Argo CD version and a hash of the tool's sources, so a changed tool is rebuilt. A lock makes concurrent callers safe.
# Cold build: about 280 MB of module downloads, then 4.6 minutes of compiling on 2 idle cores (docs/gitops.md "Cost
# in CI", docs/adr/0800-argocd-health-from-argo-cd-module.md).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$here/tools/argocd-health"
version="$(awk '$1 == "github.com/argoproj/argo-cd/v3" { print $2; exit }' "$src/go.mod")"
hash="$(cat "$src/go.mod" "$src/go.sum" "$src"/*.go | sha256sum | cut -c1-12)"
out="${LANYARD_TOOLS_CACHE:-$HOME/.cache/lanyard/tools}/argocd-health-$version-$hash"
bin="$out/argocd-health"

log() { printf '[argocd-health build] %s\n' "$*" >&2; }

if [ -x "$bin" ]; then echo "$bin"; exit 0; fi

if ! command -v go >/dev/null 2>&1; then
  log "Go is not installed. The GitOps tests evaluate health scripts with Argo CD's own Go code; install Go >= 1.25"
  log "(https://go.dev/doc/install) and run this again."
  exit 3
fi

mkdir -p "$out"
exec 9>"$out/.build.lock"
if ! flock -n 9; then
  log "another process is building it; waiting (lock $out/.build.lock)"
  flock 9
fi
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
start=$(date +%s)
log "building argocd-health with Argo CD $version (cold: several minutes; once per machine)"
cd "$src"
go build -trimpath -ldflags "-s -w" -o "$out/.argocd-health.tmp" .
mv "$out/.argocd-health.tmp" "$bin"
log "done in $(( $(date +%s) - start ))s: $bin"
echo "$bin"
