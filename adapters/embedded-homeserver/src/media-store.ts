import { randomBytes } from "node:crypto"
import { mkdir, open, readFile } from "node:fs/promises"
import { join } from "node:path"

/**
 * The bytes behind `mxc://` URIs. In memory without a data directory; with one, each upload is
 * two files under `<dataDir>/media/` (the bytes and a small JSON of its metadata), both fsync'd
 * before the upload is answered, the journal's promise for everything else it acknowledges.
 * Uploaded media is immutable, so nothing is ever rewritten in place.
 */

export interface StoredMedia {
  readonly bytes: Buffer
  readonly contentType: string
  readonly filename?: string
}

interface MediaMeta {
  readonly contentType: string
  readonly filename?: string
  readonly uploader: string
}

/** Media ids are ours alone: unguessable, and safe as file names. */
const newMediaId = () => randomBytes(18).toString("base64url")
const isMediaId = (id: string) => /^[A-Za-z0-9_-]{1,64}$/.test(id)

const writeDurably = async (file: string, data: Buffer | string): Promise<void> => {
  const handle = await open(file, "w")
  try {
    await handle.writeFile(data)
    await handle.sync()
  } finally {
    await handle.close()
  }
}

export class MediaStore {
  private readonly memory = new Map<string, StoredMedia>()

  constructor(private readonly dir: string | undefined) {}

  async put(bytes: Buffer, contentType: string, filename: string | undefined, uploader: string): Promise<string> {
    const mediaId = newMediaId()
    const media: StoredMedia = { bytes, contentType, ...(filename === undefined ? {} : { filename }) }
    if (this.dir !== undefined) {
      await mkdir(this.dir, { recursive: true })
      const meta: MediaMeta = { contentType, uploader, ...(filename === undefined ? {} : { filename }) }
      await writeDurably(join(this.dir, `${mediaId}.bin`), bytes)
      await writeDurably(join(this.dir, `${mediaId}.json`), JSON.stringify(meta))
    }
    this.memory.set(mediaId, media)
    return mediaId
  }

  async get(mediaId: string): Promise<StoredMedia | undefined> {
    const cached = this.memory.get(mediaId)
    if (cached !== undefined || this.dir === undefined || !isMediaId(mediaId)) return cached
    try {
      // The metadata is written last: bytes without it are an upload that never completed.
      const meta = JSON.parse(await readFile(join(this.dir, `${mediaId}.json`), "utf8")) as MediaMeta
      const bytes = await readFile(join(this.dir, `${mediaId}.bin`))
      const media: StoredMedia = { bytes, contentType: meta.contentType, ...(meta.filename === undefined ? {} : { filename: meta.filename }) }
      this.memory.set(mediaId, media)
      return media
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined
      throw e
    }
  }
}
