// Where the scripts come from: the one copy in common/scripts/, never a
// copy kept by hand. In a checkout of the repository the bundle is built
// at load time by clients/scripts_bundle.py (which reads the scripts with
// the C build's own iface.py and embed.py), so an edit to a script is seen
// at once; a package installed elsewhere carries scripts.json, written by
// `npm run prepare` (run by npm pack / npm install from the repository).
// `node src/bundle.js --write` writes scripts.json.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SHIPPED = join(ROOT, 'scripts.json');
const BUILDER = join(ROOT, '..', 'scripts_bundle.py');

function fromRepo() {
  return execFileSync(process.env.PYTHON || 'python3', [BUILDER], { encoding: 'utf8', maxBuffer: 64 << 20 });
}

let cache = null;

/** The bundle: {protocol, scripts: {NAME: {body, sha1, keys, argv, reply|result, lists}}}. */
export function load() {
  if (!cache) {
    if (existsSync(BUILDER)) cache = JSON.parse(fromRepo());
    else if (existsSync(SHIPPED)) cache = JSON.parse(readFileSync(SHIPPED, 'utf8'));
    else throw new Error(`lanework: scripts: ${SHIPPED} is missing (a broken install: reinstall the package)`);
  }
  return cache;
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === '--write') {
  if (existsSync(BUILDER)) writeFileSync(SHIPPED, fromRepo());
  else if (!existsSync(SHIPPED)) {
    console.error(`lanework: ${BUILDER} not found: build the package from the lanework repository`);
    process.exit(1);
  }
}
