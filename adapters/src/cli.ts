/**
 * The `widgethost` command. `serve` is the main job (issue #7): it is not built yet, and says so
 * plainly instead of pretending; `--help` lists what exists.
 */
const usage = `usage: widgethost <command>

commands:
  serve      run a widget host for a Matrix account (not built yet: issue #7)
  --help     show this help
`

const [command, ...rest] = process.argv.slice(2)
if (command === undefined || command === "--help" || command === "-h") {
  process.stdout.write(usage)
  process.exit(command === undefined ? 2 : 0)
} else if (command === "serve") {
  if (rest.length > 0) {
    process.stderr.write(`widgethost: unknown option ${rest[0]}\n`)
    process.exit(2)
  }
  process.stderr.write("widgethost: `serve` is not built yet (issue #7); the engine is usable as a library, see README\n")
  process.exit(2)
} else {
  process.stderr.write(`widgethost: unknown command ${command}\n${usage}`)
  process.exit(2)
}
