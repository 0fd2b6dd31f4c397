import type { ClientHooks } from "@widgethost/core"

/** Every client hook, answering at once (set_always_on_screen: honoured). */
export const answeringHooks: ClientHooks = {
  navigate: async () => {},
  setAlwaysOnScreen: async () => true,
  sendSticker: async () => {},
  openModal: async () => {},
  setButtonEnabled: async () => {},
  closeModal: async () => {}
}
