/**
 * What a visitor may submit. Browser-safe (zod only): the visitor page validates its form
 * with this same schema before sending, and the server validates again.
 */
import { z } from "zod";
import { IMAGE_DIMENSION } from "../../broker/contract";

export const PROMPT_MAX_LENGTH = 1000;
export const DIMENSION_DEFAULT = 512;

const { min, max, step } = IMAGE_DIMENSION;

/** Form fields arrive as strings: "512" is read as 512; "abc", "5.5" and "" are refused. */
const dimension = z.preprocess(
  (value) => (typeof value === "string" && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value),
  z
    .number({ message: "Enter a whole number of pixels" })
    .int({ message: "Enter a whole number of pixels" })
    .min(min, { message: `At least ${min} pixels` })
    .max(max, { message: `At most ${max} pixels` })
    .refine((n) => n % step === 0, { message: `Use a multiple of ${step} (e.g. ${min}, 512, 768)` }),
);

export const PromptInputSchema = z.object({
  prompt: z
    .string({ message: "Describe the image you want" })
    .trim()
    .min(1, { message: "Describe the image you want" })
    .max(PROMPT_MAX_LENGTH, { message: `At most ${PROMPT_MAX_LENGTH} characters` }),
  negativePrompt: z
    .string()
    .trim()
    .max(PROMPT_MAX_LENGTH, { message: `At most ${PROMPT_MAX_LENGTH} characters` })
    .default(""),
  width: dimension.default(DIMENSION_DEFAULT),
  height: dimension.default(DIMENSION_DEFAULT),
});

export type PromptInput = z.infer<typeof PromptInputSchema>;
