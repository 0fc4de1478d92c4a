/** "Step 12 of 30": how far the generator is with a prompt, as a bar and in words. */
import type { JobProgress } from "../../server/domain/progress";
import { describeWait } from "./line-standing";

/** `null`: a generator has the job but has reported no step yet (loading, A1111's queue): a bar without a value moves on its own. */
export function ProgressBar({ progress }: { progress: JobProgress | null }) {
  if (!progress) {
    return (
      <div className="progress" data-state="starting">
        <progress aria-label="Starting…" />
        <span className="hint">Starting…</span>
      </div>
    );
  }
  const label = `Step ${progress.step} of ${progress.steps}`;
  return (
    <div className="progress" data-step={progress.step} data-steps={progress.steps}>
      <progress max={1} value={progress.fraction} aria-label={label} />
      <span className="hint">{progress.etaSeconds === null ? label : `${label} · ${describeWait(progress.etaSeconds)} left`}</span>
    </div>
  );
}
