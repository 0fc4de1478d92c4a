/** docs/protocol.md is what third-party generators are written from: its example messages must fit the contract. */
import { readFileSync } from "node:fs";
import path from "node:path";
import { MESSAGES } from "../../broker/json-schemas";
import { ROOT } from "../helpers/processes";

const doc = readFileSync(path.join(ROOT, "docs/protocol.md"), "utf8");

test("every example message in docs/protocol.md fits the schema it is labelled with", () => {
  const examples = [...doc.matchAll(/<!-- schema: (\w+) -->\n```json\n([\s\S]*?)```/g)].map(([, name, json]) => ({ name: name!, json: json! }));
  expect(examples.map(({ name }) => name).sort()).toEqual(["control", "control", "control", "heartbeat", "job", "presence", "presence", "progress", "result", "status", "status"]);
  for (const { name, json } of examples) {
    const parsed = MESSAGES[name]!.schema.safeParse(JSON.parse(json));
    expect(parsed.error?.message, `${name}: ${json}`).toBeUndefined();
  }
});

test("docs/protocol.md links every JSON Schema and the example generator", () => {
  for (const name of Object.keys(MESSAGES)) expect(doc).toContain(`(schemas/${name}.schema.json)`);
  expect(doc).toContain("(examples/shell-generator.sh)");
});
