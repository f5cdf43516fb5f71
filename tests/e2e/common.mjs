// common.mjs - shared by the e2e scripts: load the client packages from the
// install prefix ($E2E_NODE_DIR, outside the repo), make fetch functions for
// TCP and for the Unix socket (an undici Agent with socketPath), and a tiny
// assertion kit that counts failures. Owner: serve tests.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const dir = process.env.E2E_NODE_DIR;
if (!dir) throw new Error('E2E_NODE_DIR is not set');
const req = createRequire(dir + '/node_modules/');
export const load = async (name) => import(pathToFileURL(req.resolve(name)).href);

export const undici = await load('undici');
export const { OpenAI } = await load('openai');
export const { Ollama } = await load('ollama');

export const SOCK = process.env.HEARTH_SOCK;
export const PORT = process.env.HEARTH_PORT;
export const MODEL = process.env.HEARTH_MODEL_ID;

const unixAgent = new undici.Agent({ connect: { socketPath: SOCK } });
export const unixFetch = (url, init = {}) => undici.fetch(url, { ...init, dispatcher: unixAgent });
export const tcpFetch = (url, init = {}) => undici.fetch(url, init);
export const transports = [
  { name: 'tcp', base: `http://127.0.0.1:${PORT}`, fetch: tcpFetch },
  { name: 'unix', base: 'http://localhost', fetch: unixFetch },
];

let failures = 0, passes = 0;
export function check(cond, what) {
  if (cond) passes++;
  else { failures++; console.error(`FAIL: ${what}`); }
}
export function finish(name) {
  console.log(`${name}: ${passes} passed, ${failures} failed`);
  process.exit(failures ? 1 : 0);
}
