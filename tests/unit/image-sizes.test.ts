import { PromptInputSchema } from "../../server/domain/prompt-input";
import { chosenSize, SIZE_PRESETS } from "../../app/lib/image-sizes";

test.each(SIZE_PRESETS.map((preset) => [preset.label, preset] as const))("the %s preset is a size the server accepts", (_label, preset) => {
  const size = chosenSize(preset.id, "", "");
  expect(size).toEqual({ width: String(preset.width), height: String(preset.height) });
  expect(PromptInputSchema.parse({ prompt: "a cat", ...size })).toMatchObject({ width: preset.width, height: preset.height });
});

test("the presets are a square, a portrait and a landscape", () => {
  expect(SIZE_PRESETS.map(({ label, width, height }) => `${label} ${width}×${height}`)).toEqual(["Square 512×512", "Portrait 512×768", "Landscape 768×512"]);
});

test("custom, or no size at all, takes the width and height fields as typed", () => {
  expect(chosenSize("custom", "640", "abc")).toEqual({ width: "640", height: "abc" });
  expect(chosenSize(null, "640", "480")).toEqual({ width: "640", height: "480" });
});

test("an unknown size is refused with a message naming the choices", () => {
  expect(chosenSize("huge", "512", "512")).toEqual({ error: "Size must be one of Square, Portrait, Landscape or Custom" });
  expect(chosenSize("", "512", "512")).toEqual({ error: "Size must be one of Square, Portrait, Landscape or Custom" });
});
