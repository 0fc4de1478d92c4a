/** The app's tRPC router: one sub-router per area. */
import { createCallerFactory, router } from "./init";
import { accessRouter } from "./routers/access";
import { adminRouter } from "./routers/admin";
import { eventRouter } from "./routers/event";
import { galleryRouter } from "./routers/gallery";
import { promptRouter } from "./routers/prompt";
import { showRouter } from "./routers/show";
import { visitorRouter } from "./routers/visitor";

export const appRouter = router({
  visitor: visitorRouter,
  prompt: promptRouter,
  admin: adminRouter,
  access: accessRouter,
  gallery: galleryRouter,
  event: eventRouter,
  show: showRouter,
});

export type AppRouter = typeof appRouter;
export const createCaller = createCallerFactory(appRouter);
export type Caller = ReturnType<typeof createCaller>;
