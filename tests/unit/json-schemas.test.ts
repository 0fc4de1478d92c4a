/** docs/schemas/ is generated from the zod schemas of the contract and must not drift from them. */
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { SCHEMA_DIR, jsonSchemaFiles } from "../../broker/json-schemas";

test("docs/schemas holds exactly the JSON Schemas generated from the contract", () => {
  const expected = jsonSchemaFiles();
  const committed = Object.fromEntries(readdirSync(SCHEMA_DIR).map((file) => [file, readFileSync(path.join(SCHEMA_DIR, file), "utf8")]));
  const same = Object.keys(committed).length === Object.keys(expected).length && Object.entries(expected).every(([file, text]) => committed[file] === text);
  if (!same) throw new Error("docs/schemas is stale: run npm run schemas");
  expect(Object.keys(committed).sort()).toEqual(["control", "heartbeat", "job", "presence", "progress", "result", "status"].map((name) => `${name}.schema.json`));
});

test("the schemas carry the contract's tolerances: any RFC 3339 timestamp, CFG scale from 0", () => {
  const result = JSON.parse(jsonSchemaFiles()["result.schema.json"]!);
  expect(result.properties.finishedAt).toEqual({ type: "string", format: "date-time" });
  expect(result.properties.parameters.properties.cfgScale).toEqual({ type: "number", minimum: 0, maximum: 30 });
});
