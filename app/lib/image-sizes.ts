/**
 * The guest form's sizes (issue 8 §7): shapes with names instead of pixel fields. Each is a
 * valid size (a multiple of 8 within broker/image-dimension.ts, far below the default
 * GENERATOR_MAX_PIXELS) at the 512-pixel scale Stable Diffusion 1.5 models are trained at.
 * "Custom" keeps the width and height fields for those who want them.
 */
export const SIZE_PRESETS = [
  { id: "square", label: "Square", width: 512, height: 512 },
  { id: "portrait", label: "Portrait", width: 512, height: 768 },
  { id: "landscape", label: "Landscape", width: 768, height: 512 },
] as const;

export const CUSTOM_SIZE = "custom";
export const DEFAULT_SIZE = SIZE_PRESETS[0].id;

export type SizeChoice = { width: string; height: string } | { error: string };

/**
 * The width and height a submitted form asks for: its preset's, or its own fields' for
 * "custom". A form without `size` (a script, or a page from before the presets) is read as
 * custom; any other value is refused with a message.
 */
export function chosenSize(size: string | null, width: string, height: string): SizeChoice {
  if (size === null || size === CUSTOM_SIZE) return { width, height };
  const preset = SIZE_PRESETS.find(({ id }) => id === size);
  if (!preset) return { error: `Size must be one of ${SIZE_PRESETS.map(({ label }) => label).join(", ")} or Custom` };
  return { width: String(preset.width), height: String(preset.height) };
}
