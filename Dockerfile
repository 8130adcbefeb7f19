# The single Lanyard image: every subcommand (webhook, controller, run, verify, the CLI) from one package.
# Stages: `build` compiles src/ into dist/ (scripts/build.mjs), `deps` installs the production dependencies, and the
# runtime stage holds only those two, Node and bin/ — no TypeScript, tsx, esbuild, tests, benchmarks, sandbox or
# AWS simulator. It runs as a non-root user and needs no writable path: the chart's read-only root filesystem
# without any /tmp volume works as is.
#
#   buildah bud --build-arg LANYARD_COMMIT=$(git rev-parse --short=12 HEAD) \
#     --build-arg LANYARD_VERSION=$(node -p "require('./package.json').version") -t lanyard:dev .
#
# BASE_IMAGE must provide Node 24 and npm (npm is removed from the runtime stage). Where npm reaches the registry
# through a TLS proxy, mount the CA bundle and pass --build-arg NPM_CONFIG_CAFILE=/etc/ssl/certs/ca-certificates.crt.
ARG BASE_IMAGE=node:24-bookworm-slim

FROM ${BASE_IMAGE} AS build
ARG NPM_CONFIG_CAFILE
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY scripts/build.mjs scripts/build.mjs
COPY src src
# The git commit `lanyard version` reports (.git is not part of the build context).
ARG LANYARD_COMMIT=unknown
# The image has no `lanyard up` (the local sandbox and its AWS simulator stay out of it).
# The source map (docs/adr/0709) is for debugging from a checkout; the image leaves it out.
RUN LANYARD_COMMIT=${LANYARD_COMMIT} node scripts/build.mjs --without-sandbox && rm dist/lanyard.cjs.map

FROM ${BASE_IMAGE} AS deps
ARG NPM_CONFIG_CAFILE
WORKDIR /opt/lanyard
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${BASE_IMAGE}
ARG LANYARD_COMMIT=unknown
ARG LANYARD_VERSION=""
LABEL org.opencontainers.image.title="lanyard" \
      org.opencontainers.image.description="Gives every Kubernetes workload exactly the identity it was declared to have, and proves it before the workload runs." \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${LANYARD_VERSION}" \
      org.opencontainers.image.revision="${LANYARD_COMMIT}"
# npm, npx, corepack and yarn are build tools: the runtime has no use for them.
RUN rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /opt/yarn-* \
           /usr/local/bin/yarn /usr/local/bin/yarnpkg
ENV NODE_ENV=production
WORKDIR /opt/lanyard
COPY package.json ./
COPY --from=deps /opt/lanyard/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
RUN ln -s /opt/lanyard/bin/lanyard.js /usr/local/bin/lanyard
USER 65532:65532
# V8's young generation capped at 8 MB semi-spaces: a busy webhook keeps about 120 MB RSS instead of doubling it
# (docs/adr/0124-young-generation-capped.md). bench:webhook and the webhook lifecycle test start Lanyard with the
# Node flags of this line (test/fixtures/image.ts).
ENTRYPOINT ["node", "--max-semi-space-size=8", "/opt/lanyard/bin/lanyard.js"]
