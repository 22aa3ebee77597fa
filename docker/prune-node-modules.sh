#!/bin/sh
# Leaves out of an image's node_modules what berth never loads there: onnxruntime-node's
# binaries for other platforms (about 240 MB of its 290) and better-sqlite3's C sources and
# object files (its compiled module stays).
#   sh docker/prune-node-modules.sh NODE_MODULES_DIR
set -eu
dir=${1:?usage: prune-node-modules.sh NODE_MODULES_DIR}
# onnxruntime-node loads bin/napi-vN/PLATFORM/ARCH/onnxruntime_binding.node.
platform=$(node -p 'process.platform + "/" + process.arch')
for napi in "$dir"/onnxruntime-node/bin/napi-v*; do
  [ -d "$napi" ] || continue
  for binaries in "$napi"/*/*; do
    [ "${binaries#"$napi"/}" = "$platform" ] || rm -rf "$binaries"
  done
done
sqlite="$dir/better-sqlite3"
rm -rf "$sqlite/deps" "$sqlite/src" "$sqlite/build/deps" "$sqlite/build/Release/obj" \
  "$sqlite/build/Release/obj.target" "$sqlite/build/Release/.deps"
# npm prune leaves the scopes it emptied.
find "$dir" -mindepth 1 -maxdepth 1 -type d -empty -delete
