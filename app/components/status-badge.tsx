const LABELS: Record<string, string> = {
  pending: "Waiting for approval",
  approved: "Approved, in the queue",
  generating: "Generating…",
  done: "Done: waiting for the reveal",
  revealed: "Revealed",
  denied: "Not approved",
  failed: "Failed",
  cancelled: "Cancelled",
};

export function StatusBadge({ status }: { status: string }) {
  return (
    <span className={`badge badge-${status}`} data-status={status}>
      {LABELS[status] ?? status}
    </span>
  );
}
