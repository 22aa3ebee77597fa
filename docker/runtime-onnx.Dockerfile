# A runner for containers: Node, onnxruntime-node and berth's runner code (the files that
# dist/runtime/worker-main.js and dist/runtime/fetch-model-main.js import, and only the npm
# packages they import), none of the server. It speaks berth's runner protocol; see
# docs/guides/containers.md.
#
#   docker build -f docker/runtime-onnx.Dockerfile -t berth-runtime-onnx .
#
# The command is `node dist/runtime/worker-main.js [onnx|encoder|weights]` in /app (onnx when
# none is named); give another after the image name. BASE_IMAGE and NPM_CA_BUNDLE: as in the
# Dockerfile.
ARG BASE_IMAGE=node:20-bookworm-slim

# ---- build: npm ci, npm run build, and the production node_modules beside.
# (The same stage as the Dockerfile's, so the two builds share its layers.)
FROM ${BASE_IMAGE} AS build
# better-sqlite3 is compiled by node-gyp where no prebuilt binary can be downloaded.
RUN apt-get update \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# onnxruntime-node's install script would download CUDA libraries; the CPU build is in the package.
ENV ONNXRUNTIME_NODE_INSTALL=skip
ARG NPM_CA_BUNDLE=
COPY package.json package-lock.json .npmrc docker/prune-node-modules.sh ${NPM_CA_BUNDLE} ./
# The workspace's manifest (@berth/client, the TypeScript client): npm ci links it.
COPY packages/client/package.json ./packages/client/
COPY packages/console/package.json ./packages/console/
# Scripts run after the install (`npm rebuild`): the package's own `prepare` (a build) needs the
# sources, which come later so that a change to them reuses this layer.
RUN if [ -n "$NPM_CA_BUNDLE" ]; then \
      export NODE_EXTRA_CA_CERTS="$PWD/$(basename "$NPM_CA_BUNDLE")"; \
      export npm_config_cafile="$NODE_EXTRA_CA_CERTS"; \
    fi \
  && npm ci --ignore-scripts --no-audit --no-fund \
  && npm rebuild \
  && mkdir /prod \
  && cp -a package.json package-lock.json .npmrc node_modules packages /prod/ \
  && cd /prod \
  && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
  && sh /src/prune-node-modules.sh /prod/node_modules
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY packages/client ./packages/client
COPY packages/console ./packages/console
RUN npm run build

# ---- the runner's files and packages
FROM build AS runner
COPY docker/runner-files.mjs ./
RUN node runner-files.mjs /src /runner \
  && cp -a package-lock.json .npmrc node_modules /runner/ \
  && cd /runner \
  && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
  && sh /src/prune-node-modules.sh /runner/node_modules \
  && rm package-lock.json .npmrc

# ---- the runner
FROM ${BASE_IMAGE}
# /scratch: where a runner that fetches its models (BERTH_RUNNER_FILES=fetch) unpacks them, in a
# volume of its own that the engine mounts there and fills from this folder (its mode included):
# writable by whichever user berth runs the container as.
RUN groupadd --gid 10001 berth \
  && useradd --uid 10001 --gid berth --no-create-home --shell /usr/sbin/nologin berth \
  && mkdir -m 1777 /scratch
WORKDIR /app
COPY --from=runner /runner ./
ENV NODE_ENV=production
USER berth
CMD ["node", "dist/runtime/worker-main.js"]
