// What the client costs a page on the wire: rt.js as written, and rt.min.js, the file pages
// load outside DEBUG (scripts/build-client writes it from rt.js), raw and gzipped (level 9).
// Usage: node bench/client_size.mjs
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

// What a page may load before its first morph (idiomorph is loaded then), gzipped.
const BUDGET = 6 * 1024;
const dir = new URL('../src/django_rt/static/django_rt/', import.meta.url);

for (const name of ['rt.js', 'rt.min.js']) {
  const data = readFileSync(new URL(name, dir));
  const gzipped = gzipSync(data, { level: 9 }).length;
  console.log(`${name} raw: ${data.length} bytes`);
  console.log(`${name} gzipped: ${gzipped} bytes`);
  if (name === 'rt.min.js') console.log(`budget: ${BUDGET} bytes gzipped, ${BUDGET - gzipped} to spare`);
}
