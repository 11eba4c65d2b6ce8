// What rt.js costs a page on the wire: raw, minified with terser, and minified + gzipped.
// Usage: node bench/client_size.mjs
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { minify } from 'terser';

const path = new URL('../src/django_rt/static/django_rt/rt.js', import.meta.url);
const source = readFileSync(path, 'utf8');
const { code } = await minify(source, { compress: { passes: 2 }, mangle: true, ecma: 2021 });
const gzipped = gzipSync(code, { level: 9 });

console.log(`rt.js raw: ${Buffer.byteLength(source)} bytes`);
console.log(`rt.js minified: ${Buffer.byteLength(code)} bytes`);
console.log(`rt.js minified+gzipped: ${gzipped.length} bytes`);
