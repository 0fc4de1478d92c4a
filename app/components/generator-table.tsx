/** The admin's view of the generators: who is online and sound, what each is working on, how fast. */
type Generator = {
  generatorId: string;
  state: "online" | "offline";
  local: boolean;
  backend: string | null;
  healthy: boolean;
  reason: string | null;
  concurrency: number | null;
  jobsDone: number;
  secondsPerMegapixel: number | null;
  lastError: string | null;
  workingOn: number[];
};

function stateOf(generator: Generator): string {
  if (generator.state === "offline") return "offline";
  if (!generator.healthy) return `unhealthy: ${generator.reason ?? "no reason given"}`;
  return generator.concurrency === 0 ? "finishing, then leaving" : "online";
}

export function GeneratorTable({ generators }: { generators: Generator[] }) {
  if (!generators.length) return <p className="hint">No generator has connected yet.</p>;
  return (
    <div className="table-scroll">
      <table className="generators">
        <thead>
          <tr>
            <th>Generator</th>
            <th>State</th>
            <th>Working on</th>
            <th>Done</th>
            <th>Speed</th>
            <th>Last error</th>
          </tr>
        </thead>
        <tbody>
          {generators.map((generator) => (
            <tr key={generator.generatorId} data-generator={generator.generatorId}>
              <td>
                {generator.generatorId}
                {generator.local ? " (built in)" : ""}
                {generator.backend ? <span className="hint">{` · ${generator.backend}`}</span> : null}
              </td>
              <td className={generator.state === "online" && generator.healthy ? "success" : "hint"}>{stateOf(generator)}</td>
              <td>{generator.workingOn.length ? generator.workingOn.map((id) => `#${id}`).join(", ") : "—"}</td>
              <td>{generator.jobsDone}</td>
              <td>{generator.secondsPerMegapixel === null ? "—" : `${generator.secondsPerMegapixel.toFixed(1)} s/MP`}</td>
              <td className="error">{generator.lastError ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
