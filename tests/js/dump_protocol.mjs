// Prints rt.js's PROTOCOL as JSON, for tests/test_protocol_sync.py to compare with
// django_rt.protocol.as_dict(). Runs rt.js in a bare VM context so it needs no DOM library.
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

const source = readFileSync(new URL('../../src/django_rt/static/django_rt/rt.js', import.meta.url), 'utf8');
// A page still loading: rt.js only registers its boot and touches nothing else.
const context = vm.createContext({
  console,
  document: { readyState: 'loading', addEventListener() {} },
});
context.window = context;
vm.runInContext(source, context, { filename: 'rt.js' });
process.stdout.write(JSON.stringify(context.DjangoRT.PROTOCOL) + '\n');
