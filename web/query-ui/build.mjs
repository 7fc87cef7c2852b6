// Builds the query page into pkg/queryui/dist, which the Go binary embeds:
//   dist/index.html                the page, pointing at the assets below
//   dist/assets/app-<hash>.js      the bundled script (CodeMirror, codemirror-promql, uPlot, our code)
//   dist/assets/app-<hash>.css     the bundled styles
//   dist/manifest.json             sha256 of every source input and every output, which a Go test
//                                  checks so that a source edited without a rebuild fails the tests
// Asset names carry a hash of their content so the server can let browsers cache them forever.
// Run it with `npm ci && npm run build` here, or scripts/build-query-ui.sh from the repository root.

import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, '..', '..', 'pkg', 'queryui', 'dist');

// The inputs whose hashes go into the manifest: what decides the output besides node_modules, which
// package-lock.json pins.
function sourceFiles() {
  const files = ['build.mjs', 'package.json', 'package-lock.json'];
  for (const name of readdirSync(join(here, 'src')).sort()) files.push(`src/${name}`);
  return files;
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

// thirdPartyLicenses lists each npm package that has code in the bundle, with its version, its
// declared license and the license file it ships.
function thirdPartyLicenses(inputs) {
  const packages = new Set();
  for (const input of inputs) {
    const m = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
    if (m) packages.add(m[1]);
  }
  let text = 'The query page bundles these packages from the npm registry.\n';
  for (const name of [...packages].sort()) {
    const dir = join(here, 'node_modules', name);
    const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    text += `\n${'='.repeat(78)}\n${name} ${meta.version} (${meta.license})\n${'='.repeat(78)}\n`;
    const licenseFile = readdirSync(dir).find((f) => /^(licen[cs]e|copying)/i.test(f));
    text += licenseFile ? `${readFileSync(join(dir, licenseFile), 'utf8').trim()}\n` : '(the package ships no license file)\n';
  }
  return text;
}

const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: { app: 'src/main.js' },
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  outdir: 'out',
  entryNames: '[name]-[hash]',
  legalComments: 'eof',
  charset: 'utf8',
  write: false,
  metafile: true,
  logLevel: 'warning',
});

rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, 'assets'), { recursive: true });
const outputs = {};
let js = '';
let css = '';
for (const file of result.outputFiles) {
  const name = relative(join(here, 'out'), file.path);
  writeFileSync(join(dist, 'assets', name), file.contents);
  outputs[`assets/${name}`] = sha256(file.contents);
  if (name.endsWith('.js')) js = name;
  if (name.endsWith('.css')) css = name;
}
if (!js || !css) throw new Error(`esbuild produced no script or no stylesheet: ${Object.keys(outputs)}`);

// The bundle holds other projects' code, whose licenses ask that their terms travel with it.
const bundled = Object.values(result.metafile.outputs).flatMap((out) =>
  Object.entries(out.inputs)
    .filter(([, input]) => input.bytesInOutput > 0)
    .map(([path]) => path),
);
const licenses = thirdPartyLicenses(bundled);
const licensesName = `licenses-${sha256(licenses).slice(0, 8).toUpperCase()}.txt`;
writeFileSync(join(dist, 'assets', licensesName), licenses);
outputs[`assets/${licensesName}`] = sha256(licenses);

// Asset URLs are relative to the page, which is served at <prefix>/query.
const html = readFileSync(join(here, 'src', 'index.html'), 'utf8')
  .replace('%APP_JS%', `query/assets/${js}`)
  .replace('%APP_CSS%', `query/assets/${css}`)
  .replace('%LICENSES%', `query/assets/${licensesName}`);
writeFileSync(join(dist, 'index.html'), html);
outputs['index.html'] = sha256(html);

const sources = {};
for (const file of sourceFiles()) sources[file] = sha256(readFileSync(join(here, file)));
const manifest = { note: 'written by web/query-ui/build.mjs; do not edit', sources, outputs };
writeFileSync(join(dist, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);

for (const [name, hash] of Object.entries(outputs)) {
  const size = readFileSync(join(dist, name)).length;
  console.log(`${name.padEnd(32)} ${String(size).padStart(8)} bytes  ${hash.slice(0, 12)}`);
}
