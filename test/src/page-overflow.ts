/** Layout checks for pages tested in Chromium: at a window width, what is wider than it may be. */
import type { Page } from "playwright-core"

/**
 * At `width` px: whether the page scrolls sideways, and each element matching `selector` that is
 * wider than itself (its content overflows), named by tag, id and class.
 */
export const overflowsAt = async (page: Page, width: number, selector: string): Promise<ReadonlyArray<string>> => {
  await page.setViewportSize({ width, height: 900 })
  return page.evaluate((selector) => {
    const found: string[] = []
    const doc = document.documentElement
    if (doc.scrollWidth > doc.clientWidth) found.push(`the page scrolls sideways (${doc.scrollWidth} > ${doc.clientWidth})`)
    for (const node of document.querySelectorAll<HTMLElement>(selector)) {
      if (node.scrollWidth > node.clientWidth + 1) found.push(`${node.tagName.toLowerCase()}${node.id ? "#" + node.id : ""}.${node.className}: ${node.scrollWidth} > ${node.clientWidth}`)
    }
    return found
  }, selector)
}
