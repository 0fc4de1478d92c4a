import { z } from "zod/mini";
import { PromptInputSchema } from "../../server/domain/prompt-input";

const fieldErrors = (input: Record<string, unknown>) => {
  const result = PromptInputSchema.safeParse({ prompt: "a cat", ...input });
  return result.success ? {} : z.flattenError(result.error).fieldErrors;
};

test.each([
  ["abc", "Width must be a whole number of pixels"],
  ["63", "Width must be at least 64 pixels"],
  ["2049", "Width must be at most 2048 pixels"],
  ["100", "Width must be a multiple of 8 (e.g. 64, 512, 768)"],
  ["-512", "Width must be at least 64 pixels"],
  ["", "Width must be a whole number of pixels"],
  ["5.5", "Width must be a whole number of pixels"],
  [513, "Width must be a multiple of 8 (e.g. 64, 512, 768)"],
  [null, "Width must be a whole number of pixels"],
])("width %j is refused with %j", (width, message) => {
  expect(fieldErrors({ width }).width).toEqual([message]);
});

test("height errors name the height", () => {
  expect(fieldErrors({ height: "100" }).height).toEqual(["Height must be a multiple of 8 (e.g. 64, 512, 768)"]);
  expect(fieldErrors({ height: "32" }).height).toEqual(["Height must be at least 64 pixels"]);
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
  expect(fieldErrors({ prompt: " \n\t " }).prompt).toEqual(["Prompt is empty: describe the image you want"]);
  expect(fieldErrors({ prompt: undefined }).prompt).toEqual(["Prompt is missing"]);
  expect(fieldErrors({ prompt: 42 }).prompt).toEqual(["Prompt must be text"]);
  expect(PromptInputSchema.safeParse({ prompt: "x".repeat(1000) }).success).toBe(true);
  expect(fieldErrors({ prompt: "x".repeat(1001) }).prompt).toEqual(["Prompt must be at most 1000 characters"]);
  expect(PromptInputSchema.safeParse({ prompt: "x".repeat(10_000) }).success).toBe(false);
});

test("the negative prompt is optional and capped at 1000", () => {
  expect(PromptInputSchema.parse({ prompt: "p" }).negativePrompt).toBe("");
  expect(fieldErrors({ negativePrompt: "n".repeat(1001) }).negativePrompt).toEqual(["Negative prompt must be at most 1000 characters"]);
});

describe("text hygiene", () => {
  test.each([
    ["a lone NUL", "\u0000", /control characters/],
    ["NUL inside words", "a cat\u0000 on a mat", /control characters/],
    ["an escape sequence", "red \u001b[31m text", /control characters/],
    ["a lone carriage return", "line one\rline two", /control characters/],
    ["a vertical tab", "a\u000bb", /control characters/],
    ["DEL", "a\u007fb", /control characters/],
    ["a C1 control (NEL)", "a\u0085b", /control characters/],
    ["a C1 control (CSI)", "a\u009bb", /control characters/],
    ["a right-to-left override", "harmless \u202Egnp.exe", /text-direction override/],
    ["a left-to-right isolate", "a \u2066b\u2069", /text-direction override/],
    ["a lone high surrogate", "broken \ud83d emoji", /broken characters/],
    ["a lone low surrogate", "broken \ude00 emoji", /broken characters/],
  ])("a prompt with %s is refused with a message naming the field", (_name, prompt, message) => {
    const errors = fieldErrors({ prompt });
    expect(errors.prompt).toHaveLength(1);
    expect(errors.prompt![0]).toMatch(/^Prompt must not contain /);
    expect(errors.prompt![0]).toMatch(message);
  });

  test("the negative prompt is held to the same rules, under its own name", () => {
    expect(fieldErrors({ negativePrompt: "blurry\u0000" }).negativePrompt).toEqual(["Negative prompt must not contain control characters (only line breaks and tabs)"]);
  });

  test("a forbidden character is the only complaint, even in an over-long prompt", () => {
    expect(fieldErrors({ prompt: `\u0007${"x".repeat(2000)}` }).prompt).toEqual(["Prompt must not contain control characters (only line breaks and tabs)"]);
  });

  test("line breaks, tabs, emoji, right-to-left marks and U+FFFD are kept", () => {
    const prompt = "first line\nsecond\tline 🐈‍⬛ \u200Fשלום\u200E \uFFFD";
    expect(PromptInputSchema.parse({ prompt }).prompt).toBe(prompt);
  });

  test("a textarea's CRLF line breaks are stored as LF", () => {
    expect(PromptInputSchema.parse({ prompt: "one\r\ntwo\r\n\r\nthree\r\n", negativePrompt: "a\r\nb" })).toMatchObject({ prompt: "one\ntwo\n\nthree", negativePrompt: "a\nb" });
  });

  test("text is NFC-normalised before it is stored", () => {
    const decomposed = "cafe\u0301";
    expect(PromptInputSchema.parse({ prompt: decomposed }).prompt).toBe("caf\u00e9");
  });

  test("length is measured after normalisation", () => {
    // 1000 "é" typed as e + combining accent: 2000 code units, 1000 characters once composed.
    const decomposed = "e\u0301".repeat(1000);
    expect(PromptInputSchema.parse({ prompt: decomposed }).prompt).toHaveLength(1000);
    expect(PromptInputSchema.parse({ prompt: `${" ".repeat(500)}${"x".repeat(1000)}\r\n` }).prompt).toHaveLength(1000);
    expect(PromptInputSchema.safeParse({ prompt: "\r\n".repeat(600) + "x".repeat(500) }).success).toBe(true);
  });
});
