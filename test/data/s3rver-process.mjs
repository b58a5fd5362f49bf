// An s3rver process for the data tests: `node --openssl-legacy-provider s3rver-process.mjs <dir>`.
// s3rver encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3 only offers
// through its legacy provider: hence a process of its own, started with that flag. Prints
// `{"port":N}` once listening, then one line `{"method","url"}` per request it receives,
// so that tests can count the requests a mount or the cache made.
import { createRequire } from 'node:module';

const S3rver = createRequire(import.meta.url)('s3rver');
const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: process.argv[2] });
const { port } = await server.run();
server.httpServer.prependListener('request', (req) => {
  process.stdout.write(`${JSON.stringify({ method: req.method, url: req.url })}\n`);
});
process.stdout.write(`${JSON.stringify({ port })}\n`);
// Ends with its parent: stdin closes when the parent goes away.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
