// An ESLint rule: a relative import never leaves its package's folder. Packages depend on each
// other by name (declared in package.json), so each one builds, packs and installs on its own.
import { existsSync } from "node:fs"
import { dirname, relative, resolve, sep } from "node:path"

const roots = new Map()
/** The nearest folder holding a package.json: the package the file belongs to. */
const packageRoot = (file) => {
  const start = dirname(file)
  if (roots.has(start)) return roots.get(start)
  let dir = start
  while (!existsSync(resolve(dir, "package.json")) && dirname(dir) !== dir) dir = dirname(dir)
  roots.set(start, dir)
  return dir
}

const noRelativeImportAcrossPackages = {
  meta: {
    type: "problem",
    docs: { description: "Relative imports stay inside their package; other packages are imported by name." },
    messages: { leaves: "'{{source}}' leaves package folder '{{root}}': import the other package by its name instead." },
    schema: []
  },
  create(context) {
    const file = context.filename
    const root = packageRoot(file)
    const check = (node) => {
      const source = node.source
      if (source?.type !== "Literal" || typeof source.value !== "string" || !source.value.startsWith(".")) return
      const target = resolve(dirname(file), source.value)
      if (target === root || target.startsWith(root + sep)) return
      context.report({ node: source, messageId: "leaves", data: { source: source.value, root: relative(process.cwd(), root) || "." } })
    }
    return { ImportDeclaration: check, ExportAllDeclaration: check, ExportNamedDeclaration: check, ImportExpression: check }
  }
}

export const packageBoundaries = { rules: { "no-relative-import-across-packages": noRelativeImportAcrossPackages } }
