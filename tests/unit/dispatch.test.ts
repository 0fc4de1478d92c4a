import { chooseGenerator, type DispatchCandidate } from "../../server/domain/dispatch";

const gpu = (generatorId: string, overrides: Partial<DispatchCandidate> = {}): DispatchCandidate => ({
  generatorId,
  local: false,
  freeSlots: 1,
  maxPixels: 2048 * 2048,
  secondsPerMegapixel: 10,
  failing: false,
  ...overrides,
});
const job = { width: 512, height: 512 };

test("the fastest measured generator with a free slot gets the job", () => {
  expect(chooseGenerator(job, [gpu("slow", { secondsPerMegapixel: 20 }), gpu("fast", { secondsPerMegapixel: 5 })])).toEqual({ kind: "lease", generatorId: "fast" });
  expect(chooseGenerator(job, [gpu("slow", { secondsPerMegapixel: 20 }), gpu("fast", { secondsPerMegapixel: 5, freeSlots: 0 })])).toEqual({ kind: "lease", generatorId: "slow" });
});

test("a generator not yet measured goes first, so that it gets measured", () => {
  expect(chooseGenerator(job, [gpu("known", { secondsPerMegapixel: 1 }), gpu("new", { secondsPerMegapixel: null })])).toEqual({ kind: "lease", generatorId: "new" });
});

test("with every slot taken the job waits", () => {
  expect(chooseGenerator(job, [gpu("a", { freeSlots: 0 }), gpu("b", { freeSlots: 0 })])).toEqual({ kind: "wait" });
  expect(chooseGenerator(job, [])).toEqual({ kind: "wait" });
});

test("the built-in generator serves only while no other generator is online, busy or not", () => {
  const local = gpu("promptgate-local", { local: true, secondsPerMegapixel: 0.1 });
  expect(chooseGenerator(job, [local])).toEqual({ kind: "lease", generatorId: "promptgate-local" });
  expect(chooseGenerator(job, [local, gpu("box")])).toEqual({ kind: "lease", generatorId: "box" });
  expect(chooseGenerator(job, [local, gpu("box", { freeSlots: 0 })])).toEqual({ kind: "wait" });
});

test("a job larger than every online generator takes is blocked with a reason; smaller ones go to those that can", () => {
  const small = gpu("small", { maxPixels: 512 * 512 });
  expect(chooseGenerator({ width: 1024, height: 1024 }, [small])).toEqual({
    kind: "blocked",
    reason: "No generator can make this: 1024×1024 is larger than any online generator takes (262,144 pixels at most).",
  });
  expect(chooseGenerator({ width: 1024, height: 1024 }, [small, gpu("big", { freeSlots: 0 })])).toEqual({ kind: "wait" });
  expect(chooseGenerator(job, [small, gpu("big", { secondsPerMegapixel: 1 })])).toEqual({ kind: "lease", generatorId: "big" });
});

test("a generator whose last jobs failed gets work only when no sound generator can make the job, busy or not", () => {
  const failing = gpu("failing", { secondsPerMegapixel: 1, failing: true });
  expect(chooseGenerator(job, [failing, gpu("steady", { secondsPerMegapixel: 20 })])).toEqual({ kind: "lease", generatorId: "steady" });
  expect(chooseGenerator(job, [failing, gpu("steady", { freeSlots: 0 })])).toEqual({ kind: "wait" });
  expect(chooseGenerator({ width: 2048, height: 2048 }, [failing, gpu("small", { maxPixels: 512 * 512 })])).toEqual({ kind: "lease", generatorId: "failing" });
  expect(chooseGenerator(job, [failing])).toEqual({ kind: "lease", generatorId: "failing" });
});
