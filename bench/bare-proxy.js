// The bare Node peer of the gateway benchmark: a node:http reverse proxy with a keep-alive agent
// and no authentication, the least a Node process can do to proxy a request.
import http from 'node:http';

const port = Number(process.env.PORT ?? 0);
const upstream = new URL(process.env.BENCH_UPSTREAM ?? 'http://127.0.0.1:9000');
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const server = http.createServer((req, res) => {
  const out = http.request({ hostname: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent }, (up) => {
    res.writeHead(up.statusCode ?? 502, up.headers);
    up.pipe(res);
  });
  out.on('error', () => {
    res.writeHead(502);
    res.end();
  });
  req.pipe(out);
});
server.keepAliveTimeout = 72_000;
server.listen(port, '127.0.0.1');
if (process.send) process.on('disconnect', () => process.exit(0));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
