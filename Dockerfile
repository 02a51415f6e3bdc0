# syntax=docker/dockerfile:1
#
# One image for every process of the Fees API: `api` (the default command), `worker`, `migrate`
# and `temporal-setup`, with exactly the commands `npm run cluster` runs natively
# (host/process-commands.ts; tests/unit/deploy.test.ts holds them equal). Build from the repository
# root: docker build -t fees-api .

ARG NODE_IMAGE=node:20.20-bookworm-slim

# Dependencies and the build (the API's request schemas and OpenAPI document in dist/, the typed
# client); then the development dependencies are dropped.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY . .
RUN npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# The runtime: sources (run through tsx, as natively), production dependencies and the build only.
FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=4000 \
    WORKER_PORT=4001 \
    MIGRATIONS=verify \
    DATA_DIR=/var/lib/fees-api
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/core ./core
COPY --from=build /app/bills ./bills
COPY --from=build /app/invoices ./invoices
COPY --from=build /app/taxes ./taxes
COPY --from=build /app/customers ./customers
COPY --from=build /app/usage ./usage
COPY --from=build /app/webhooks ./webhooks
COPY --from=build /app/temporal ./temporal
COPY --from=build /app/host ./host
COPY --from=build /app/client ./client
COPY --from=build /app/migrations ./migrations
COPY --from=build /app/tsconfig.json /app/encore.app ./
# The invoice outbox (without SMTP_URL) is the only thing a process writes; the code stays read-only to it.
RUN mkdir -p /var/lib/fees-api && chown node:node /var/lib/fees-api
USER node
EXPOSE 4000 4001
# The API answers on PORT, a worker on WORKER_PORT: whichever this process serves.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "const e=process.env;Promise.any([e.PORT,e.WORKER_PORT].map(p=>fetch(`http://127.0.0.1:${p}/healthz`).then(r=>{if(!r.ok)throw r.status}))).then(()=>process.exit(0),()=>process.exit(1))"]
CMD ["node", "--import", "tsx", "host/main.ts", "api"]
