// A minimal upstream for the gateway benchmark: plain node:http answering a small JSON body, so
// the gateway's cost (token check, header rewrite, proxying) can be compared with calling it directly.
import { createServer } from 'node:http';

const port = Number(process.env.PORT ?? 0);
const body = JSON.stringify({ ok: true, items: [1, 2, 3] });
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.keepAliveTimeout = 72_000;
server.listen(port, '127.0.0.1');
if (process.send) process.on('disconnect', () => process.exit(0));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
