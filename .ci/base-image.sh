#!/usr/bin/env bash
# Builds berth-base:bookworm, a stand-in for node:20-bookworm-slim on a machine that reaches no
# container registry: Debian bookworm (debootstrap --variant=minbase, from this machine's apt
# mirror) plus the Node 20 this machine runs, its npm and its headers (node-gyp compiles
# better-sqlite3 against them, as nodejs.org's are out of reach). Imported with `docker import`.
#
#   eval "$(.ci/engine.sh start)" && .ci/base-image.sh      # prints the image's name
#
# The debootstrap tarball is cached in BERTH_CI_CACHE (default /var/cache/berth-ci), so a second
# machine start costs seconds; an image already there for the same Node version is kept.
# Needs root, debootstrap (installed with apt when missing) and DOCKER_HOST of a running engine.
set -euo pipefail
IMAGE=${BERTH_BASE_IMAGE:-berth-base:bookworm}
CACHE=${BERTH_CI_CACHE:-/var/cache/berth-ci}
DOCKER=/usr/bin/docker
NODE=$(command -v node)
NODE_VERSION=$("$NODE" --version)
ROOTFS_TAR=$CACHE/bookworm-minbase.tar

if ! $DOCKER version >/dev/null 2>&1; then
  echo "base-image: no engine answers at ${DOCKER_HOST:-the default socket} (start one: eval \"\$(.ci/engine.sh start)\")" >&2
  exit 1
fi
existing=$($DOCKER image inspect -f '{{ index .Config.Labels "berth.node" }}' "$IMAGE" 2>/dev/null || true)
if [ "$existing" = "$NODE_VERSION" ]; then
  echo "$IMAGE"
  exit 0
fi

# The mirror this machine's apt uses, so the image's apt reaches the same one.
sources=/etc/apt/sources.list.d/debian.sources
mirror=$(awk '/^URIs:/ { print $2; exit }' "$sources" 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}

mkdir -p "$CACHE"
work=$(mktemp -d /tmp/berth-base.XXXXXX)
trap 'rm -rf "$work"' EXIT

if [ ! -s "$ROOTFS_TAR" ]; then
  if ! command -v debootstrap >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  fi
  debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
  if [ -f "$sources" ]; then
    cp "$sources" "$work/rootfs/etc/apt/sources.list.d/"
    rm -f "$work/rootfs/etc/apt/sources.list"
  fi
  # What a published slim image leaves out too: downloaded packages and apt's lists.
  rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/*
  tar -C "$work/rootfs" -cf "$ROOTFS_TAR.partial" .
  mv "$ROOTFS_TAR.partial" "$ROOTFS_TAR"
  rm -rf "$work/rootfs"
fi

# Node: the binary (its libraries, libstdc++ and glibc, are bookworm's own), npm and the headers.
cp "$ROOTFS_TAR" "$work/rootfs.tar"
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
node_prefix=$(dirname "$(dirname "$NODE")")
npm=$(command -v npm)
npx=$(command -v npx)
# (Without -h: npm and npx stay the symbolic links they are.)
tar -C / -rf "$work/rootfs.tar" \
  "${NODE#/}" "${npm#/}" "${npx#/}" "${npm_dir#/}" "${node_prefix#/}/include/node"

$DOCKER import \
  --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV npm_config_nodedir=$node_prefix" \
  --change "LABEL berth.node=$NODE_VERSION" \
  --change 'CMD ["node"]' \
  "$work/rootfs.tar" "$IMAGE" >/dev/null
echo "$IMAGE"
