// Makes `npm start` / `npm test` work on a fresh clone: installs from the lockfile once.
// Only Node built-ins here, because nothing else is installed yet when this runs.
import { existsSync } from "node:fs"
import { execSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { dirname, join } from "node:path"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
if (!existsSync(join(root, "node_modules", ".package-lock.json"))) {
  process.stderr.write("widgethost: installing dependencies from package-lock.json (npm ci)\n")
  execSync("npm ci --no-audit --no-fund", { cwd: root, stdio: ["ignore", process.stderr, process.stderr] })
}
