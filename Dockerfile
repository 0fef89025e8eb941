# syntax=docker/dockerfile:1
# Signet: one image for the gateway (SIGNET_ROLE=api), the worker (SIGNET_ROLE=worker) or both (all).
#   docker build -t signet .
#   docker run -p 4000:4000 -e AUTH_JWT_SECRET=… -e PROXY_TOKEN_SECRET=… -e DATABASE_URL=… signet
# Node.js 22: 20 reached its end of life in April 2026. The unit and integration suites run on both
# (.ci/run); 22 answered the warm page 10-15% faster in the same rounds (docs/benchmarks.md,
# finding 40). NODE_IMAGE=node:20-bookworm-slim still builds a working image.
ARG NODE_IMAGE=node:22-bookworm-slim

# 1. Build @signet/vue, the Vue app (and the example app), and the server with every dependency (vite, tsc).
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY server/package.json server/
COPY web/package.json web/
COPY packages/vue/package.json packages/vue/
COPY examples/vue-apollo/package.json examples/vue-apollo/
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json schema.graphql codegen.ts ./
COPY packages packages
COPY examples examples
COPY server server
COPY web web
RUN npm run build:workspaces && npm run persisted -- /app/persisted-operations.json

# 2. Production dependencies of the server workspace only (no vite, vue or test tooling).
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY server/package.json server/
COPY web/package.json web/
COPY packages/vue/package.json packages/vue/
COPY examples/vue-apollo/package.json examples/vue-apollo/
RUN npm ci --omit=dev --workspace server --no-audit --no-fund && npm cache clean --force

# 3. Runtime: compiled server, built app, production node_modules; runs as the unprivileged `node` user.
FROM ${NODE_IMAGE} AS runtime
# MALLOC_ARENA_MAX: two glibc malloc arenas instead of 8 per core; the threads' freed memory is
# reused instead of held per thread (docs/operations.md, "Memory and V8 flags").
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=2 \
    PORT=4000 \
    HOST=0.0.0.0 \
    DATA_DIR=/app/data
WORKDIR /app
COPY --from=prod-deps /app ./
# With the embedded database's cluster template: a first start without DATABASE_URL copies it
# instead of running PGlite's initdb (530-660 MiB; docs/operations.md, "Embedded mode").
COPY --from=build /app/server/dist server/dist
COPY --from=build /app/web/dist web/dist
# The web app's operations: set PERSISTED_OPERATIONS_ONLY=true to refuse any other document.
COPY --from=build /app/persisted-operations.json ./
ENV PERSISTED_OPERATIONS_FILE=/app/persisted-operations.json
# Only the embedded mode (no DATABASE_URL) writes here: PGlite and the local bucket.
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 4000
# Liveness only; orchestrators that route traffic should also probe /readyz.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||4000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM drains: in-flight requests finish, subscriptions complete, exit within
# SHUTDOWN_DELAY_SECONDS (default 0) + 10 s.
STOPSIGNAL SIGTERM
# A 16 MB young generation (V8's default, said out loud) and an old generation that grows to twice
# what the last full collection kept: see docs/operations.md, "Memory and V8 flags".
CMD ["node", "--max-semi-space-size=16", "--heap-growing-percent=100", "server/dist/main.js"]
