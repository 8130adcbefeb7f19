#!/usr/bin/env bash
# Everything the test node needs (docs/adr/0710): Debian packages (containerd, runc, the CNI plugins,
# busybox-static, mmdebstrap, buildah, iptables, jq), the kubelet, kube-scheduler, kube-proxy and kubectl
# binaries, and the images the node runs. Each step runs only when its result is missing, so a warm run
# takes about a second. Needs root (the machines run as root).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { printf '[node set-up] %s\n' "$*" >&2; }

# command that proves the package is installed -> Debian package
declare -A packages=(
  [/usr/bin/containerd]=containerd
  [/usr/sbin/runc]=runc
  [/usr/lib/cni/bridge]=containernetworking-plugins
  [/bin/busybox]=busybox-static
  [/usr/bin/mmdebstrap]=mmdebstrap
  [/usr/bin/buildah]=buildah
  [/usr/sbin/iptables]=iptables
  [/usr/sbin/conntrack]=conntrack
  [/usr/sbin/ip]=iproute2
  [/usr/bin/jq]=jq
)
missing=()
for f in "${!packages[@]}"; do [ -x "$f" ] || missing+=("${packages[$f]}"); done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing Debian packages: ${missing[*]}; the test node needs root to install and run them"
    exit 3
  fi
  start=$(date +%s)
  # One lock for the whole machine: concurrent test runs must not race on dpkg.
  exec 8>/var/lock/lanyard-node-apt.lock
  flock 8
  log "installing ${missing[*]} from Debian (apt-get update first)"
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  flock -u 8
  log "packages installed in $(( $(date +%s) - start ))s"
fi

bash "$here/build-control-plane.sh"
bash "$here/build-node-images.sh"
