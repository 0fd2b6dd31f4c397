import { mkdir, open, rename } from "node:fs/promises"
import { dirname } from "node:path"

/** temp file, fsync, rename over, fsync the directory: the old or the new file survives a crash. */
export const writeFileDurably = async (file: string, bytes: Uint8Array | string, mode = 0o600): Promise<void> => {
  await mkdir(dirname(file), { recursive: true })
  const tmp = `${file}.${process.pid}.tmp`
  const handle = await open(tmp, "w", mode)
  try {
    await handle.writeFile(bytes)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(tmp, file)
  await syncDirectory(dirname(file))
}

/** fsyncs a directory, so that a rename or a new file in it survives a crash. */
export const syncDirectory = async (path: string): Promise<void> => {
  const dir = await open(path, "r")
  try {
    await dir.sync()
  } finally {
    await dir.close()
  }
}
