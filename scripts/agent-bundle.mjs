// node scripts/agent-bundle.mjs: prints the path of the agent bundled into one ES module by esbuild,
// building it first when it is missing or any of its sources changed since. The agent runs from it
// rather than under tsx's loader, whose hooks thread (a second V8 isolate) and transpiled-source
// copies cost ~25 MiB of RSS. npm packages stay external (loaded from node_modules as usual).
import { readFileSync, renameSync, statSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import process from 'node:process';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(repo, '.build');
const bundle = join(outDir, 'agent.mjs');
// What the bundle was built from: each input's size and mtime, as esbuild's metafile lists them.
const record = join(outDir, 'agent.inputs.json');

const stamp = (path) => {
  try {
    const s = statSync(path);
    return `${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
};

/** Fresh when every recorded input (this script included) is unchanged: a changed, moved or deleted
 *  file changes its own stamp, and a new file is only reached through an importer that changed. */
function fresh() {
  if (!existsSync(bundle)) return false;
  let inputs;
  try {
    inputs = JSON.parse(readFileSync(record, 'utf8'));
  } catch {
    return false;
  }
  return Object.entries(inputs).every(([path, s]) => stamp(join(repo, path)) === s);
}

// The sources find files next to them (the native addon, the proxy worker, web assets, protos) by
// import.meta.url/dirname: each file keeps its own, not the bundle's.
const ownImportMeta = {
  name: 'own-import-meta',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8')
        .replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href))
        .replaceAll('import.meta.dirname', JSON.stringify(dirname(args.path)));
      return { contents: text, loader: 'ts' };
    });
  },
};

async function build() {
  const { build: esbuild } = await import('esbuild');
  mkdirSync(outDir, { recursive: true });
  // Built under a name of its own and renamed into place: agents starting together never read half a file.
  const tmp = join(outDir, `agent.${process.pid}.mjs`);
  const r = await esbuild({
    entryPoints: [join(repo, 'src', 'agent', 'main.ts')], outfile: tmp, bundle: true, platform: 'node', format: 'esm',
    absWorkingDir: repo, target: 'node20', packages: 'external', sourcemap: 'linked', sourcesContent: false, metafile: true, logLevel: 'error',
    plugins: [ownImportMeta],
  });
  // This script and tsconfig.json (esbuild reads its compiler options) decide the output as much as the sources.
  const inputs = { [relative(repo, fileURLToPath(import.meta.url))]: stamp(fileURLToPath(import.meta.url)), 'tsconfig.json': stamp(join(repo, 'tsconfig.json')) };
  for (const path of Object.keys(r.metafile.inputs)) inputs[path] = stamp(join(repo, path));
  // The map is named after the bundle's final name (esbuild wrote the temporary one into it).
  const text = readFileSync(tmp, 'utf8').replace(/sourceMappingURL=agent\.\d+\.mjs\.map/, 'sourceMappingURL=agent.mjs.map');
  writeFileSync(tmp, text);
  renameSync(`${tmp}.map`, `${bundle}.map`);
  renameSync(tmp, bundle);
  const tmpRecord = `${record}.${process.pid}`;
  writeFileSync(tmpRecord, JSON.stringify(inputs));
  renameSync(tmpRecord, record);
}

if (!fresh()) await build();
process.stdout.write(`${bundle}\n`);
