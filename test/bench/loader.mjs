// Runs the benchmarks' TypeScript the way a production build would: compiled by esbuild with no
// `keepNames`. tsx always sets `keepNames`, which wraps every function in a `__name` helper and
// gives every closure its own property store: about 2.5 KB per idle session and a few per cent of
// CPU that no bundled build pays (the reference engine runs from its compiled `lib/`).
//   node --import ./test/bench/loader.mjs test/bench/run.ts
import { register } from "node:module"

register("./loader-hooks.mjs", import.meta.url)
