import { z } from "zod";
import { PromptInputSchema } from "../../server/domain/prompt-input";

const widthErrors = (width: unknown) => {
  const result = PromptInputSchema.safeParse({ prompt: "a cat", width });
  return result.success ? null : z.flattenError(result.error).fieldErrors.width;
};

test.each([
  ["abc", /whole number/],
  ["63", /At least 64/],
  ["2049", /At most 2048/],
  ["100", /multiple of 8/],
  ["-512", /At least 64/],
  ["", /whole number/],
  ["5.5", /whole number/],
  [513, /multiple of 8/],
  [null, /whole number/],
])("width %j is refused with %s", (width, message) => {
  expect(widthErrors(width)?.join(" ")).toMatch(message);
});

test.each([
  ["64", 64],
  [" 2048 ", 2048],
  [768, 768],
  [undefined, 512],
])("width %j is accepted as %d", (width, expected) => {
  expect(PromptInputSchema.parse({ prompt: "a cat", width }).width).toBe(expected);
});

test("prompts are trimmed and must hold 1–1000 characters", () => {
  expect(PromptInputSchema.parse({ prompt: "  hi  " }).prompt).toBe("hi");
  expect(PromptInputSchema.safeParse({ prompt: " \n\t " }).success).toBe(false);
  expect(PromptInputSchema.safeParse({ prompt: "x".repeat(1000) }).success).toBe(true);
  expect(PromptInputSchema.safeParse({ prompt: "x".repeat(1001) }).success).toBe(false);
  expect(PromptInputSchema.safeParse({ prompt: "x".repeat(10_000) }).success).toBe(false);
});

test("the negative prompt is optional and capped at 1000", () => {
  expect(PromptInputSchema.parse({ prompt: "p" }).negativePrompt).toBe("");
  expect(PromptInputSchema.safeParse({ prompt: "p", negativePrompt: "n".repeat(1001) }).success).toBe(false);
});
