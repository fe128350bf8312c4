// A worker's own /metrics, on METRICS_PORT: a worker has no web server, and Prometheus
// scrapes each process it wants numbers from. Plain node:http; it answers nothing else.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { Logger } from "../lib/platform/logger.ts";

export async function serveMetrics(registry: Registry, host: string, port: number, logger: Logger) {
  const server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("only GET /metrics here\n");
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { "Content-Type": registry.contentType, "Cache-Control": "no-store" }).end(text),
      (err: unknown) => {
        logger.warn({ err }, "could not collect metrics");
        res.writeHead(500, { "Content-Type": "text/plain" }).end("could not collect metrics\n");
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  const bound = (server.address() as AddressInfo).port;
  logger.info({ url: `http://${host}:${bound}/metrics` }, "worker metrics listening");
  return {
    port: bound,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
