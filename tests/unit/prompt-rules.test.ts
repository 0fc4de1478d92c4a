/**
 * The visitor page checks its form with server/domain/prompt-rules.ts; the server with
 * PromptInputSchema, made of the same rules (the rules themselves: prompt-input.test.ts). Both
 * must agree on every input, missing fields included, message for message.
 */
import fc from "fast-check";
import { flattenError } from "zod/mini";
import { PromptInputSchema } from "../../server/domain/prompt-input";
import { checkPromptInput } from "../../server/domain/prompt-rules";

const value = fc.oneof(fc.string(), fc.constantFrom("512", " 64 ", "5.5", "", "a cat", "\u0000", "x".repeat(1001)), fc.integer({ min: -100, max: 4000 }), fc.constant(null), fc.double());
const input = fc.record({ prompt: value, negativePrompt: value, width: value, height: value }, { requiredKeys: [] });

test("the browser's check and the server's schema accept the same inputs as the same values and refuse the rest with the same messages", () => {
  fc.assert(
    fc.property(input, (form) => {
      const browser = checkPromptInput(form);
      const server = PromptInputSchema.safeParse(form);
      if (server.success) expect(browser).toEqual({ data: server.data });
      else expect(browser).toEqual({ fieldErrors: flattenError(server.error).fieldErrors });
    }),
    { seed: 10, numRuns: 2000 },
  );
});
