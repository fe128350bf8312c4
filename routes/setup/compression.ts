// Responses compressed with brotli or gzip, as the browser asks: Bulma's stylesheet alone
// is 680 KB as it is and about 70 KB compressed. Live event streams are left alone, since
// a compressor holds small writes back until it has a block worth sending.
import compression from "compression";
import type { Request, Response } from "express";

export function setUpCompression() {
  return compression({
    filter: (req: Request, res: Response) =>
      !String(res.getHeader("Content-Type") ?? "").startsWith("text/event-stream") && compression.filter(req, res),
  });
}
