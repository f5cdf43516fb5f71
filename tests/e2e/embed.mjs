// embed.mjs - the real `openai` and `ollama` npm clients on `hearth serve`'s
// embedding routes (driven by tests/cli/test_serve_embed.sh): openai
// embeddings.create (one input, a batch, base64 as the client asks by
// default) and ollama embed (one, a batch), each vector compared with
// llama.cpp's for the same file and text (argv[2]: tests/data/embed/CASE.json,
// model "bert" on the server). Owner: serve tests.
// Env: E2E_NODE_DIR HEARTH_SOCK HEARTH_PORT.
import { readFileSync } from 'node:fs';
import { OpenAI, Ollama, transports, check, finish } from './common.mjs';

const ref = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const cos = (a, b) => {
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { d += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return d / Math.sqrt(na * nb);
};
const close = (got, want) => got.length === want.length && cos(got, want) >= 0.9999 &&
  got.every((x, i) => Math.abs(x - want[i]) <= 1e-3);

for (const t of transports) {
  const tag = `[${t.name}]`;
  const oa = new OpenAI({ baseURL: `${t.base}/v1`, apiKey: 'unused', fetch: t.fetch, maxRetries: 0 });
  const one = await oa.embeddings.create({ model: 'bert', input: ref.inputs[0] });
  check(one.data.length === 1 && close(one.data[0].embedding, ref.embeddings[0]),
        `${tag} openai embeddings.create, one input = llama.cpp`);
  const many = await oa.embeddings.create({ model: 'bert', input: ref.inputs });
  check(many.data.length === ref.inputs.length && many.data.every((d, i) => d.index === i && close(d.embedding, ref.embeddings[i])),
        `${tag} openai embeddings.create, ${ref.inputs.length} inputs = llama.cpp`);
  check(many.usage.prompt_tokens > ref.inputs.length, `${tag} openai usage.prompt_tokens ${many.usage.prompt_tokens}`);
  const floats = await oa.embeddings.create({ model: 'bert', input: ref.inputs[1], encoding_format: 'float' });
  check(close(floats.data[0].embedding, ref.embeddings[1]), `${tag} openai encoding_format float`);

  const ol = new Ollama({ host: t.base, fetch: t.fetch });
  const e1 = await ol.embed({ model: 'bert', input: ref.inputs[2] });
  check(e1.embeddings.length === 1 && close(e1.embeddings[0], ref.embeddings[2]), `${tag} ollama embed, one input`);
  const e2 = await ol.embed({ model: 'bert', input: ref.inputs });
  check(e2.embeddings.length === ref.inputs.length && e2.embeddings.every((v, i) => close(v, ref.embeddings[i])),
        `${tag} ollama embed, a batch`);
}
finish('embed.mjs');
