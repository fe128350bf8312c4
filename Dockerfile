# GenDog image: one image for both processes.
#   web:    docker run --init ... gendog                 (default CMD: the web)
#   worker: docker run --init ... gendog node --import tsx tasks/worker.ts
# The SQLite database lives in /data: mount a volume there and share it between web and
# worker. Migrations are applied at process start, so no separate migrate step is needed.

# ---- build: compile better-sqlite3 and generate the Prisma client ----
FROM node:20-bookworm-slim AS build

# better-sqlite3 is built from source with node-gyp (python3, make, g++), against the
# headers that ship in the node image, so nothing else is downloaded for the build.
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
# and what the postinstall `prisma generate` reads (prisma.config.ts imports lib/config.ts).
COPY package.json package-lock.json prisma.config.ts ./
COPY prisma ./prisma
COPY lib/config.ts ./lib/config.ts
RUN npm ci --omit=dev && npm cache clean --force

# ---- runtime: no compilers, runs as the unprivileged node user ----
FROM node:20-bookworm-slim

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
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/generated ./generated
COPY . .

USER node

EXPOSE 3000

# node itself, not npm, so SIGTERM reaches the app and it shuts down in order.
CMD ["node", "--import", "tsx", "web.ts"]
