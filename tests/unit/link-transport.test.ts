import { topicMatches } from "../../server/link-transport";

test("topic filters match as MQTT says: + is one level, # the rest (the parent included)", () => {
  expect(topicMatches("promptgate/v2/generators/+/status/+", "promptgate/v2/generators/gpu-a/status/job-1")).toBe(true);
  expect(topicMatches("promptgate/v2/generators/+/status/+", "promptgate/v2/generators/gpu-a/status")).toBe(false);
  expect(topicMatches("promptgate/v2/generators/+/presence", "promptgate/v2/generators/gpu-a/presence/extra")).toBe(false);
  expect(topicMatches("promptgate/v2/generators/+/presence", "promptgate/v2/generators/gpu-a/heartbeat")).toBe(false);
  expect(topicMatches("promptgate/v2/#", "promptgate/v2/generators/gpu-a/jobs")).toBe(true);
  expect(topicMatches("promptgate/v2/#", "promptgate/v2")).toBe(true);
  expect(topicMatches("promptgate/v2/#", "promptgate/v1/x")).toBe(false);
});
