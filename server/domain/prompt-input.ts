/**
 * The server's schema of what a visitor may submit (`prompt.submit`, `admin.edit`): the shared
 * rules of ./prompt-rules.ts as zod fields, so a refusal is a zod issue on its field (tRPC's
 * `fieldErrors`) with the very message the visitor page shows before sending.
 */
import * as z from "zod/mini";
import { PROMPT_RULES, type RuleResult } from "./prompt-rules";

export type { PromptInput } from "./prompt-rules";

/**
 * One rule as a field. A bare transform is optional on the way in, so a missing key reaches the
 * rule (which says "is missing", or gives the default) instead of zod's own complaint.
 */
const field = <T>(rule: (value: unknown) => RuleResult<T>) =>
  z.transform((value: unknown, ctx) => {
    const checked = rule(value);
    if ("value" in checked) return checked.value;
    ctx.issues.push({ code: "custom", message: checked.error, input: value });
    return z.NEVER;
  });

export const PromptInputSchema = z.object({
  prompt: field(PROMPT_RULES.prompt),
  negativePrompt: field(PROMPT_RULES.negativePrompt),
  width: field(PROMPT_RULES.width),
  height: field(PROMPT_RULES.height),
});
