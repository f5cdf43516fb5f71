// models.mjs - the real `ollama` npm client against a `hearth serve` that
// serves several models (driven by tests/cli/test_serve_models.sh): list,
// ps, pull with streamed progress, a chat with the pulled model, delete.
// Owner: serve tests. Env: E2E_NODE_DIR HEARTH_SOCK HEARTH_PORT; argv[2]: a
// URL of a GGUF file on the test's file server.
import { Ollama, unixFetch, check, finish } from './common.mjs';

const url = process.argv[2];
const ol = new Ollama({ host: 'http://localhost', fetch: unixFetch });

const before = await ol.list();
check(Array.isArray(before.models) && before.models.length >= 2, `list -> ${before.models.map((m) => m.name)}`);
check(before.models.every((m) => m.details && m.details.format === 'gguf' && m.size > 0), 'list: details and sizes');

const name = url.split('/').pop().replace(/\.gguf$/, '');
let progress = 0, sawTotal = false, last = null;
for await (const p of await ol.pull({ model: url, stream: true })) {
  progress++;
  if (p.total > 0 && p.completed >= 0) sawTotal = true;
  last = p.status;
}
check(progress >= 3 && sawTotal && last === 'success', `pull: ${progress} progress events, total seen ${sawTotal}, last ${last}`);
const after = await ol.list();
check(after.models.some((m) => m.name === name), `the pulled ${name} is listed`);

const r = await ol.chat({ model: name, messages: [{ role: 'user', content: 'Who made the heaven?' }],
                         options: { num_predict: 4, temperature: 0 } });
check(r.model === name && typeof r.message.content === 'string' && r.done, `chat with the pulled model (${r.model})`);
const ps = await ol.ps();
check(ps.models.some((m) => m.name === name && m.size > 0 && m.expires_at), `ps shows ${name} loaded`);

await ol.delete({ model: name });
const gone = await ol.list();
check(!gone.models.some((m) => m.name === name), 'delete: no longer listed');
let refused = false;
try { await ol.show({ model: name }); } catch (e) { refused = e.status_code === 404 || /not found/.test(String(e)); }
check(refused, 'show of a deleted model: not found');
finish('models.mjs');
