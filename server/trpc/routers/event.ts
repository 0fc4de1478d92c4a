/** The end of the event: what there is to export and delete, and deleting every visitor's data. */
import { z } from "zod";
import { adminProcedure, router } from "../init";
import { audit } from "./admin";

export const eventRouter = router({
  /** What "end the event" would delete. */
  summary: adminProcedure.query(({ ctx }) => ctx.services.retention.visitorData()),

  /**
   * Deletes every visitor with their sessions, fingerprints, prompts, jobs, images and image
   * files; keeps the admin account, generator credentials and settings. The typed "END" is
   * checked here too, so no API call can skip the confirmation.
   */
  end: adminProcedure
    .input(z.object({ confirm: z.literal("END", { message: "Type END (in capitals) to confirm; nothing was deleted." }) }))
    .mutation(async ({ ctx }) => {
      const deleted = await ctx.services.retention.purgeEverything();
      audit(ctx, { action: "event.end", details: { ...deleted } });
      return deleted;
    }),
});
