// The baseline's server: Express + Remix's request handler + the static build, as promptgate serves its pages.
import { createRequestHandler } from "@remix-run/express";
import express from "express";

process.env.NODE_ENV = "production";
const root = new URL(".", import.meta.url).pathname;
const build = await import(`${root}build/index.js`);
const app = express();
app.disable("x-powered-by");
app.use("/build", express.static(`${root}public/build`, { immutable: true, maxAge: "1y" }));
app.all("*", createRequestHandler({ build, mode: "production" }));
const server = app.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => console.log(`baseline listening on ${server.address().port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
