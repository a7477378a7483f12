// Runs the world scenario in the contract host compiled to wasm32 (contracts/host-node) and
// prints the 76-byte outcome as hex. Usage: node run_host.mjs host_node.wasm SEED COUNT
//
// The module is a plain cdylib, not wasm-bindgen output; any import it has (from dependencies
// that would only be reached on paths the scenario never takes) is stubbed to throw.
import { readFileSync } from "node:fs";

const [wasmPath, seed, count] = process.argv.slice(2);
const module = new WebAssembly.Module(readFileSync(wasmPath));
const imports = {};
for (const { module: m, name } of WebAssembly.Module.imports(module)) {
  imports[m] ??= {};
  imports[m][name] = () => {
    throw new Error(`unexpected import called: ${m}.${name}`);
  };
}
const { exports } = new WebAssembly.Instance(module, imports);
const ptr = exports.mw_run_world(BigInt(seed), BigInt(count));
const bytes = new Uint8Array(exports.memory.buffer, ptr, 76);
console.log(Buffer.from(bytes).toString("hex"));
