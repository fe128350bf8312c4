// A child of the soak bench: holds STREAMS event streams open against URL until it is
// stopped, reading everything sent, as that many open pages would. In its own process, so
// reading them does not slow the load generator's clock.
import http from "node:http";

const url = process.env.URL!;
const count = Number(process.env.STREAMS ?? 200);
let bytes = 0;
let open = 0;
for (let i = 0; i < count; i++) {
  http
    .get(`${url}/events`, { agent: false }, (res) => {
      if (res.statusCode === 200) open += 1;
      res.on("data", (chunk: Buffer) => (bytes += chunk.length));
    })
    .on("error", () => {});
}
setInterval(() => console.log(JSON.stringify({ open, bytes })), 5000);
