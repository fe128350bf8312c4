# GenDog image: one image for both processes, running the compiled dist/ on Node 24 LTS.
#   web:    docker run --init ... gendog                                      (default CMD)
#   worker: docker run --init ... gendog node --enable-source-maps --max-semi-space-size=8 --max-old-space-size=256 dist/worker.js
# The SQLite database lives in /data: mount a volume there and share it between web and
# worker. Migrations are applied at process start, so no separate migrate step is needed.
# HEALTHCHECK runs dist/healthcheck.js, which finds which of the two runs in the container.

# Both stages on the same base: better-sqlite3 is compiled in the first and loaded in the second.
ARG NODE_IMAGE=node:24-trixie-slim

# ---- build: install everything, compile better-sqlite3, generate Prisma, bundle dist/ ----
FROM ${NODE_IMAGE} AS build

# better-sqlite3 11 has no prebuilt binary for Node 24: it is built from source with
# node-gyp (python3, make, g++) against the headers in the node image, so nothing else is
# downloaded for the build.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*

ENV npm_config_nodedir=/usr/local \
    npm_config_build_from_source=true \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false

WORKDIR /app

# Only what `npm ci` needs, so its layer is rebuilt only when these change: the lockfile,
# and what the postinstall `prisma generate` reads (prisma.config.ts and what it imports).
COPY package.json package-lock.json prisma.config.ts ./
COPY prisma ./prisma
COPY lib/platform/config.ts ./lib/platform/
COPY lib/store/postgres/adapter.ts ./lib/store/postgres/
# Dev dependencies too: esbuild bundles dist/ below; they are pruned after.
RUN npm ci && npm cache clean --force

# The sources (.dockerignore keeps tests/, dev/, bench/ and local files out of the context).
COPY tsconfig.json app.ts web.ts ./
COPY lib ./lib
COPY routes ./routes
COPY tasks ./tasks
COPY scripts ./scripts
# Then only production dependencies, without better-sqlite3's compiler intermediates and
# the SQLite sources it was compiled from (about 25 MB; it loads build/Release/*.node).
RUN npm run build \
 && npm prune --omit=dev \
 && rm -rf node_modules/better-sqlite3/build/Release/obj node_modules/better-sqlite3/build/Release/obj.target node_modules/better-sqlite3/deps

# ---- runtime: compiled code and production dependencies, no compilers, not root ----
FROM ${NODE_IMAGE}

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATABASE_URL=file:/data/gendog.db \
    CHECKPOINT_DISABLE=1 \
    npm_config_update_notifier=false

WORKDIR /app

# The database directory; a fresh named volume mounted here takes over this ownership.
RUN mkdir -p /data && chown node:node /data

# Code and dependencies stay owned by root (read-only to the app); only /data is writable.
# Runtime files only:
# - package.json: "type": "module" makes node load dist/*.js as ES modules;
# - node_modules: production dependencies (the Prisma CLI applies migrations at start);
# - dist/: web, worker and health check, each one bundle (the generated Prisma client is inside);
# - prisma.config.ts and the lib/ files it imports: the Prisma CLI's configuration;
# - prisma/: schemas and migrations; views/ and static/: what the web serves.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/prisma.config.ts ./
COPY --from=build /app/lib/platform/config.ts ./lib/platform/
COPY --from=build /app/lib/store/postgres/adapter.ts ./lib/store/postgres/
COPY --from=build /app/prisma ./prisma
COPY views ./views
COPY static ./static

USER node

EXPOSE 3000

# The web's /readyz, or a worker's heartbeat (see scripts/healthcheck.ts). A worker's check
# waits up to 5 s for a heartbeat, hence the timeout. Migrations run before either is ready.
HEALTHCHECK --interval=15s --timeout=10s --start-period=60s --retries=3 \
  CMD ["node", "dist/healthcheck.js"]

# node itself, not npm, so SIGTERM reaches the app and it shuts down in order. The flags are
# package.json's start script's: a young generation of 8 MB a half and an old generation
# capped at 256 MB keep a busy web at ~130-145 MB and a worker at ~100 MB, where V8's defaults
# let them sit at 170-200 and 120-125 (its live heap is ~20 MB); no CPU cost measured.
CMD ["node", "--enable-source-maps", "--max-semi-space-size=8", "--max-old-space-size=256", "dist/web.js"]
