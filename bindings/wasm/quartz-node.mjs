// quartz-node.mjs - load the wasm build in Node: loadQuartzNode(dir) where
// dir holds quartz_wasm.mjs and quartz_wasm.wasm (BUILD/bindings/wasm).
// Node has no wasm ES-module import without a flag, so this compiles the
// file once into a WebAssembly.Module and hands it to loadQuartz(); a Worker
// imports the .wasm as a module instead.
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadQuartz } from './quartz.mjs';

export * from './quartz.mjs';

export async function loadQuartzNode(dir = process.env.QZ_WASM_DIR) {
  if (!dir) throw new Error('loadQuartzNode: no directory (set QZ_WASM_DIR to BUILD/bindings/wasm)');
  dir = resolve(dir);
  const { default: factory } = await import(pathToFileURL(join(dir, 'quartz_wasm.mjs')).href);
  const wasmModule = await WebAssembly.compile(await readFile(join(dir, 'quartz_wasm.wasm')));
  return loadQuartz({ factory, wasmModule });
}
