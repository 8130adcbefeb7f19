#!/usr/bin/env bash
# Builds the images the test node runs, without any image registry (docs/adr/0710):
#   - node:24-bookworm-slim, made locally: Debian bookworm by mmdebstrap (minbase) + Node 24 from the `node`
#     npm package + npm; committed under the public name so the project's Dockerfile builds unchanged;
#   - registry.k8s.io/pause:3.10: busybox-static sleeping (the sandbox image; it only holds namespaces);
#   - Lanyard's image from the project's Dockerfile (`buildah bud --pull-never`);
#   - lanyard.local/aws-whoami: the base, the AWS SDK's STS client and a script calling sts:GetCallerIdentity.
# Each image is keyed by a hash of its inputs and saved as an OCI archive in the cache; a warm run only
# hashes. Prints the path of a JSON manifest (name and archive of each image) on stdout.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${LANYARD_IMAGE_CACHE:-$HOME/.cache/lanyard/images}"
mkdir -p "$cache"
log() { printf '[node images] %s\n' "$*" >&2; }
hash_stdin() { sha256sum | cut -c1-16; }

exec 7>"$cache/.build.lock"
if ! flock -n 7; then log "another process is building the images; waiting"; flock 7; fi

node_bin="$root/node_modules/node/bin/node"
npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
[ -x "$node_bin" ] || { log "missing $node_bin: run npm ci first"; exit 3; }
BASE=docker.io/library/node:24-bookworm-slim
PAUSE=registry.k8s.io/pause:3.10

have_image() { buildah inspect --type image "$1" >/dev/null 2>&1; }
# archive NAME KEY: the OCI archive of image NAME built from inputs KEY, pushed when missing.
archive() {
  local name="$1" key="$2" file
  file="$cache/$(echo "$name" | tr '/:' '__')-$key.oci.tar"
  if [ ! -s "$file" ]; then
    # Uncompressed: compressing hundreds of MB only for containerd to decompress them again costs minutes.
    buildah push --quiet --disable-compression "$name" "oci-archive:$file.tmp:$name" >/dev/null
    mv "$file.tmp" "$file"
  fi
  echo "$file"
}
# built NAME KEY: true when image NAME exists and was built from inputs KEY (a label records them).
built() { [ "$(buildah inspect --type image --format '{{index .OCIv1.Config.Labels "dev.lanyard.inputs"}}' "$1" 2>/dev/null)" = "$2" ]; }

start=$(date +%s)
# Archives of older inputs (other checkouts may still use recent ones).
find "$cache" -maxdepth 1 -name '*.oci.tar' -mtime +2 -delete

# --- base: Debian bookworm minbase + Node 24 + npm --------------------------------------------------
base_key="$( { sha256sum "$node_bin" | cut -d' ' -f1; cat "$npm_dir/package.json"; echo bookworm-minbase-ca-certificates; } | hash_stdin)"
if ! built "$BASE" "$base_key"; then
  log "building $BASE locally (mmdebstrap bookworm minbase + Node $("$node_bin" --version) + npm $(jq -r .version "$npm_dir/package.json" 2>/dev/null || echo '?'))"
  t0=$(date +%s)
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  mirror="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)"
  mmdebstrap --quiet --variant=minbase --include=ca-certificates bookworm "$work/base.tar" "${mirror:-http://deb.debian.org/debian}"
  ctr="$(buildah from scratch)"
  mnt="$(buildah mount "$ctr")"
  tar -xf "$work/base.tar" -C "$mnt"
  install -m 0755 "$node_bin" "$mnt/usr/local/bin/node"
  mkdir -p "$mnt/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$mnt/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$mnt/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$mnt/usr/local/bin/npx"
  buildah umount "$ctr" >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_VERSION="$("$node_bin" --version | tr -d v)" --cmd node \
    --label "dev.lanyard.inputs=$base_key" "$ctr"
  buildah commit --quiet --rm "$ctr" "$BASE" >/dev/null
  rm -rf "$work"
  trap - EXIT
  log "base built in $(( $(date +%s) - t0 ))s"
fi

# --- pause -------------------------------------------------------------------------------------------
pause_key="$(sha256sum /bin/busybox | hash_stdin)"
if ! built "$PAUSE" "$pause_key"; then
  log "building $PAUSE from busybox-static"
  ctr="$(buildah from scratch)"
  buildah copy --quiet "$ctr" /bin/busybox /bin/busybox >/dev/null
  buildah config --entrypoint '["/bin/busybox","sleep","2147483647"]' --user 65535:65535 \
    --label "dev.lanyard.inputs=$pause_key" "$ctr"
  buildah commit --quiet --rm "$ctr" "$PAUSE" >/dev/null
fi

# RUN npm ci/install reaches the registry only with this machine's CA bundle (mounted read-only for builds).
npmrc="$cache/build-npmrc"
printf 'cafile=/etc/ssl/certs/ca-certificates.crt\nfund=false\naudit=false\nupdate-notifier=false\n' > "$npmrc"
npm_build=(--quiet --pull-never --network host --layers --volume /etc/ssl/certs:/etc/ssl/certs:ro --volume "$npmrc:/usr/local/etc/npmrc:ro")

# --- Lanyard -----------------------------------------------------------------------------------------
# Inputs: every file of the repository the image could copy (tests, docs and benchmarks excluded).
cd "$root"
lanyard_key="$( { echo "$base_key"; git ls-files -z --cached --others --exclude-standard -- . ':!test' ':!docs' ':!bench' ':!*.md' \
  ':!scripts/ensure-node.sh' ':!scripts/build-node-images.sh' ':!deploy/helm/lanyard/templates' ':!deploy/helm/lanyard/values.yaml' \
  | sort -z | xargs -0 sha256sum 2>/dev/null; } | hash_stdin)"
LANYARD="lanyard.local/lanyard:$lanyard_key"
if ! built "$LANYARD" "$lanyard_key"; then
  log "building $LANYARD from the Dockerfile (buildah bud --pull-never)"
  t0=$(date +%s)
  buildah bud "${npm_build[@]}" --build-arg NPM_CONFIG_CAFILE=/etc/ssl/certs/ca-certificates.crt \
    --build-arg "LANYARD_COMMIT=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" \
    --build-arg "LANYARD_VERSION=$(jq -r .version package.json)" \
    --label "dev.lanyard.inputs=$lanyard_key" -t "$LANYARD" -f Dockerfile . >/dev/null
  log "Lanyard image built in $(( $(date +%s) - t0 ))s"
fi

# --- aws-whoami test image -----------------------------------------------------------------------------
whoami_dir="$root/test/images/aws-whoami"
# The same STS client version as the project's lock file.
sts_version="$(jq -r '.packages["node_modules/@aws-sdk/client-sts"].version' "$root/package-lock.json")"
whoami_key="$( { echo "$base_key $sts_version"; cat "$whoami_dir"/*; } | hash_stdin)"
WHOAMI="lanyard.local/aws-whoami:$whoami_key"
if ! built "$WHOAMI" "$whoami_key"; then
  log "building $WHOAMI (@aws-sdk/client-sts $sts_version)"
  buildah bud "${npm_build[@]}" --build-arg "CLIENT_STS_VERSION=$sts_version" \
    --label "dev.lanyard.inputs=$whoami_key" -t "$WHOAMI" -f "$whoami_dir/Containerfile" "$whoami_dir" >/dev/null
fi

manifest="$cache/node-images-$whoami_key-$pause_key.json"
cat > "$manifest.tmp" <<EOF
{
  "pause": {"name": "$PAUSE", "archive": "$(archive "$PAUSE" "$pause_key")"},
  "lanyard": {"name": "$LANYARD", "archive": "$(archive "$LANYARD" "$lanyard_key")"},
  "awsWhoami": {"name": "$WHOAMI", "archive": "$(archive "$WHOAMI" "$whoami_key")"}
}
EOF
mv "$manifest.tmp" "$manifest"
log "images ready in $(( $(date +%s) - start ))s"
echo "$manifest"
