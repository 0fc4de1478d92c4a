/** The wire contract's tolerances (what A1111 and RFC 3339 allow) and its check of outgoing messages. */
import { ContractError, GeneratorIdSchema, MAX_SEED, ProgressMessageSchema, ResultMessageSchema, parseGeneratorTopic, topics, SCHEMA_VERSION, SamplingParametersSchema, StatusMessageSchema, encode, type ResultMessage } from "../../broker/contract";
import { GeneratorEnvSchema, parseEnvironment } from "../../generator/env";

const status = (at: string) => ({ schemaVersion: SCHEMA_VERSION, jobId: "9b2d6f0e-3c4a-4e8b-9a1d-2f6c8e0b7a54", generatorId: "gpu-box-1", state: "started", at });

test("a timestamp may be any RFC 3339 date-time: Z or an offset, with or without fractions, in either case", () => {
  for (const at of ["2026-11-25T19:19:38Z", "2026-11-25T19:19:38.123Z", "2026-11-25T19:19:38+00:00", "2026-11-25T20:49:38.123456+01:30", "2026-11-25T14:19:38-05:00", "2026-11-25t19:19:38z"]) {
    expect(StatusMessageSchema.safeParse(status(at)).success, at).toBe(true);
  }
  for (const at of ["yesterday", "", "2026-11-25", "2026-11-25T19:19:38", "2026-13-45T19:19:38Z", "2026-11-25T19:19Z", "1764098378"]) {
    expect(StatusMessageSchema.safeParse(status(at)).success, at).toBe(false);
  }
});

test("sampling parameters take what A1111 takes: CFG scale 0 to 30 (turbo models use 0 or 1), steps 1 to 150, seeds -1 to 2³²−1", () => {
  const parameters = { steps: 30, cfgScale: 5, samplerName: "Euler a", restoreFaces: false, seed: -1 };
  const accepts = (overrides: object) => SamplingParametersSchema.safeParse({ ...parameters, ...overrides }).success;
  for (const accepted of [{ cfgScale: 0 }, { cfgScale: 1 }, { cfgScale: 1.5 }, { cfgScale: 30 }, { steps: 1 }, { steps: 150 }, { seed: 0 }, { seed: MAX_SEED }]) {
    expect(accepts(accepted), JSON.stringify(accepted)).toBe(true);
  }
  for (const refused of [{ cfgScale: -0.5 }, { cfgScale: 31 }, { steps: 0 }, { steps: 151 }, { steps: 2.5 }, { seed: -2 }, { seed: MAX_SEED + 1 }, { seed: 1.5 }]) {
    expect(accepts(refused), JSON.stringify(refused)).toBe(false);
  }
});

test("a generator id is 1–128 letters, digits, '.', '_' or '-' (safe as a topic level, username, URL and shell word); GENERATOR_ID follows the same rule", () => {
  for (const id of ["gpu-box-1", "GPU.box_2", "a.b_c", "x".repeat(128)]) {
    expect(GeneratorIdSchema.safeParse(id).success, id).toBe(true);
    expect(parseEnvironment(GeneratorEnvSchema, { GENERATOR_ID: id }).GENERATOR_ID).toBe(id);
  }
  for (const id of ["", "gpu box 2", "Küche", "a/b", "a+b", "a#b", "line\nbreak", "nul\u0000", "bell\u0007", "x".repeat(129)]) {
    expect(GeneratorIdSchema.safeParse(id).success, JSON.stringify(id)).toBe(false);
    // An empty variable means unset: the default id.
    if (id) expect(() => parseEnvironment(GeneratorEnvSchema, { GENERATOR_ID: id }), JSON.stringify(id)).toThrow(/GENERATOR_ID/);
  }
});

test("encode refuses a message that breaks the contract before it is sent, naming the field", () => {
  const result: ResultMessage = {
    schemaVersion: SCHEMA_VERSION,
    jobId: "9b2d6f0e-3c4a-4e8b-9a1d-2f6c8e0b7a54",
    generatorId: "gpu-box-1",
    imagePng: "iVBORw0KGgo=",
    seed: 7,
    width: 64,
    height: 64,
    parameters: { steps: 1, cfgScale: 0, samplerName: "Euler", restoreFaces: false, seed: 7 },
    backend: "test",
    timing: { queuedMs: 0, generationMs: 1 },
    finishedAt: "2026-11-25T19:19:38+00:00",
  };
  expect(JSON.parse(encode(ResultMessageSchema, result).toString())).toEqual(result);
  expect(() => encode(ResultMessageSchema, { ...result, width: 65 })).toThrow(ContractError);
  expect(() => encode(ResultMessageSchema, { ...result, width: 65 })).toThrow(/width/);
  const { seed: _missing, ...withoutSeed } = result;
  expect(() => encode(ResultMessageSchema, withoutSeed as ResultMessage)).toThrow(/seed/);
});

test("a progress report is per job, says step n of m, and carries nothing it does not name (no preview image survives encoding)", () => {
  const jobId = "9b2d6f0e-3c4a-4e8b-9a1d-2f6c8e0b7a54";
  expect(parseGeneratorTopic(topics.progress("gpu-box-1", jobId))).toEqual({ generatorId: "gpu-box-1", kind: "progress", jobId });
  expect(parseGeneratorTopic("promptgate/v2/generators/gpu-box-1/progress")).toBeNull();
  const progress = { schemaVersion: SCHEMA_VERSION, jobId, generatorId: "gpu-box-1", step: 12, steps: 30, fraction: 0.4, etaSeconds: 8.5, at: "2026-11-25T19:19:38Z" };
  expect(JSON.parse(encode(ProgressMessageSchema, { ...progress, live_preview: "data:image/png;base64,AAAA" } as typeof progress).toString())).toEqual(progress);
  expect(() => encode(ProgressMessageSchema, { ...progress, step: 31 })).toThrow(/step/);
  expect(() => encode(ProgressMessageSchema, { ...progress, fraction: 1.5 })).toThrow(/fraction/);
  expect(() => encode(ProgressMessageSchema, { ...progress, steps: 0, step: 0 })).toThrow(/steps/);
});
