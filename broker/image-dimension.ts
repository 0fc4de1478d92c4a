/**
 * Width and height limits of an image: what A1111's UI allows (64–2048 in steps of 8). Apart
 * from broker/contract.ts, which re-exports it, so the browser can read the limits without
 * the contract's zod schemas.
 */
export const IMAGE_DIMENSION = { min: 64, max: 2048, step: 8 } as const;
