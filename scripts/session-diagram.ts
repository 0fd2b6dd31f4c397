// Rewrites docs/session-machine.md from the session chart's definition (`npm run diagram`).
import { writeFileSync } from "node:fs"
import { sessionDiagramDocument } from "../machines/src/session-diagram.ts"

writeFileSync(new URL("../docs/session-machine.md", import.meta.url), sessionDiagramDocument())
