import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { inflateSync } from "node:zlib";
import { JobMessageSchema, SCHEMA_VERSION, decode } from "../../broker/contract";
import { describeErrorBody } from "../../generator/a1111";
import { GeneratorEnvSchema, generatorConfigFrom, parseEnvironment } from "../../generator/env";
import { renderPlaceholder } from "../../generator/placeholder";
import { encodePng, readPngSize } from "../../generator/png";
import { ROOT } from "../helpers/processes";

test("generator/ imports only broker/contract and npm packages, never app/ or server/", () => {
  const dir = path.join(ROOT, "generator");
  for (const file of readdirSync(dir).filter((name) => name.endsWith(".ts"))) {
    const source = readFileSync(path.join(dir, file), "utf8");
    const imports = [...source.matchAll(/from\s+"([^"]+)"/g)].map((match) => match[1]!);
    for (const specifier of imports.filter((s) => s.startsWith("."))) {
      expect(specifier === "../broker/contract" || specifier.startsWith("./"), `${file} imports ${specifier}`).toBe(true);
    }
  }
});

test("encodePng writes a PNG whose pixels decode back", () => {
  const rgb = new Uint8Array(3 * 2 * 3).map((_, i) => i * 10);
  const png = encodePng(3, 2, rgb);
  expect(readPngSize(png)).toEqual({ width: 3, height: 2 });
  const idat = png.indexOf("IDAT");
  const length = png.readUInt32BE(idat - 4);
  const raw = inflateSync(png.subarray(idat + 4, idat + 4 + length));
  expect([...raw.subarray(1, 10)]).toEqual([...rgb.subarray(0, 9)]);
  expect(readPngSize(Buffer.from("not a png at all, really not"))).toBeNull();
});

test("placeholder images have the requested size and differ by prompt, colour and seed", () => {
  const base = { prompt: "a red fox", width: 320, height: 200, colour: "#c32222", seed: 7 };
  const image = renderPlaceholder(base);
  expect(readPngSize(image)).toEqual({ width: 320, height: 200 });
  const variants = [image, renderPlaceholder({ ...base, prompt: "a blue whale" }), renderPlaceholder({ ...base, colour: "#2255cc" }), renderPlaceholder({ ...base, seed: 8 })];
  expect(new Set(variants.map((png) => png.toString("base64"))).size).toBe(4);
  expect(renderPlaceholder(base).equals(image)).toBe(true);
});

test("placeholder rendering copes with the extremes: 64×64, 2048×2048, 1000 characters", () => {
  expect(readPngSize(renderPlaceholder({ prompt: "w ".repeat(500), width: 64, height: 64, colour: "#000000", seed: 1 }))).toEqual({ width: 64, height: 64 });
  expect(readPngSize(renderPlaceholder({ prompt: "big", width: 2048, height: 2048, colour: "#ffffff", seed: 1 }))).toEqual({ width: 2048, height: 2048 });
});

describe("contract decode", () => {
  const job = { schemaVersion: SCHEMA_VERSION, jobId: "5b0c1c2e-7c1a-4d7e-9b1a-0c2d3e4f5a6b", prompt: "p", negativePrompt: "", width: 512, height: 512, authorColour: "#abcdef", approvedAt: new Date().toISOString(), leaseMs: 30_000 };

  test("accepts a valid job", () => {
    expect(decode(JobMessageSchema, JSON.stringify(job))).toEqual({ ok: true, value: job });
  });

  test.each([
    ["not JSON", "{"],
    ["another schema version", JSON.stringify({ ...job, schemaVersion: 1 })],
    ["no lease", JSON.stringify({ ...job, leaseMs: undefined })],
    ["a bad width", JSON.stringify({ ...job, width: 100 })],
    ["a job id that is not a UUID", JSON.stringify({ ...job, jobId: "1" })],
    ["an empty payload", ""],
  ])("refuses %s without throwing", (_name, payload) => {
    expect(decode(JobMessageSchema, Buffer.from(payload)).ok).toBe(false);
  });
});

describe("A1111 error bodies become one line with A1111's own words", () => {
  test.each([
    ["an HTTPException's detail, not its class", 404, { error: "HTTPException", detail: "Sampler not found", body: "", errors: "" }, "HTTP 404: Sampler not found"],
    ["an exception's class and text", 500, { error: "OutOfMemoryError", detail: "", body: "", errors: "CUDA out of memory" }, "HTTP 500: OutOfMemoryError: CUDA out of memory"],
    ["pydantic's field errors", 422, { detail: [{ loc: ["body", "steps"], msg: "value is not a valid integer", type: "type_error.integer" }] }, "HTTP 422: body.steps: value is not a valid integer"],
    ["a proxy's plain detail", 502, { detail: "Bad Gateway" }, "HTTP 502: Bad Gateway"],
  ])("%s", (_name, status, body, line) => {
    expect(describeErrorBody(status, JSON.stringify(body))).toBe(line);
  });

  test("a body that is not JSON is quoted, shortened", () => {
    expect(describeErrorBody(503, "<html>" + "x".repeat(400))).toBe(`HTTP 503: <html>${"x".repeat(294)}`);
    expect(describeErrorBody(500, "")).toBe("HTTP 500: no body");
  });
});

test("generator defaults: 300 s per txt2img call, 3 attempts, no model override", () => {
  const config = generatorConfigFrom(parseEnvironment(GeneratorEnvSchema, {}));
  expect({ timeout: config.sdTimeoutMs, attempts: config.maxAttempts, model: config.sdModel }).toEqual({ timeout: 300_000, attempts: 3, model: undefined });
  expect(() => parseEnvironment(GeneratorEnvSchema, { GENERATOR_MAX_ATTEMPTS: "0" })).toThrow('GENERATOR_MAX_ATTEMPTS="0": expected at least 1');
});
