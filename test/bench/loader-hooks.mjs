// Module hooks for loader.mjs: TypeScript files outside node_modules are compiled with esbuild,
// and our packages resolve to those files.
import { readFile } from "node:fs/promises"
import { transform } from "esbuild"

// Our packages export their TypeScript under this condition; the benchmarks run on the sources.
export async function resolve(specifier, context, nextResolve) {
  return nextResolve(specifier, { ...context, conditions: [...context.conditions, "@widgethost/source"] })
}

export async function load(url, context, nextLoad) {
  if (url.startsWith("file:") && /\.m?ts$/.test(new URL(url).pathname) && !url.includes("/node_modules/")) {
    const source = await readFile(new URL(url), "utf8")
    const { code } = await transform(source, { loader: "ts", format: "esm", target: "node20", sourcefile: url, sourcemap: "inline" })
    return { format: "module", source: code, shortCircuit: true }
  }
  return nextLoad(url, context)
}
