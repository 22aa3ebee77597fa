# berth's server. Configured only through BERTH_* variables (docs/configuration.md); serves on
# 0.0.0.0:8080 inside, keeps its data in the volume /var/lib/berth; runs as the user berth.
#
#   docker build -t berth .
#   docker run -d -p 8080:8080 -v berth-data:/var/lib/berth berth
#
# See docs/guides/containers.md. BASE_IMAGE: any Debian bookworm image with Node 20.12+ on its
# PATH. NPM_CA_BUNDLE (for CI behind a TLS-intercepting proxy only): a CA bundle file in the
# build context that npm trusts during the build; it stays in the build stage, never in the image.
ARG BASE_IMAGE=node:20-bookworm-slim

# ---- build: npm ci, npm run build, and the production node_modules beside.
# (docker/runtime-onnx.Dockerfile has the same stage, so the two builds share its layers.)
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

# ---- the server
FROM ${BASE_IMAGE}
RUN groupadd --gid 10001 berth \
  && useradd --uid 10001 --gid berth --home-dir /var/lib/berth --no-create-home --shell /usr/sbin/nologin berth \
  && mkdir -p /var/lib/berth \
  && chown berth:berth /var/lib/berth
WORKDIR /app
# Owned by root: the server cannot change its own code.
COPY --from=build /prod/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY python ./python
COPY --from=build /src/dist ./dist
# @berth/client, which node_modules links to (the CLI's HTTP client).
COPY --from=build /src/packages/client/package.json ./packages/client/
COPY --from=build /src/packages/client/dist ./packages/client/dist
COPY --from=build /src/packages/console/package.json ./packages/console/
COPY --from=build /src/packages/console/dist ./packages/console/dist
ENV NODE_ENV=production \
  BERTH_HOST=0.0.0.0 \
  BERTH_PORT=8080 \
  BERTH_DATA_DIR=/var/lib/berth
USER berth
VOLUME /var/lib/berth
EXPOSE 8080
# node's http, so the image needs no curl. (Set BERTH_HOST to 0.0.0.0 or 127.0.0.1 for it.)
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "require('node:http').get({ host: '127.0.0.1', port: process.env.BERTH_PORT, path: '/healthz', timeout: 4000 }, (res) => process.exit(res.statusCode === 200 ? 0 : 1)).on('timeout', () => process.exit(1)).on('error', () => process.exit(1))"]
ENTRYPOINT ["node", "/app/bin/berth"]
CMD ["serve"]
