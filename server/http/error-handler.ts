/**
 * Express's last error handler. Express and its body parsers mark the errors that are the
 * client's fault with a 4xx `status` (a path that is not valid percent-encoding, say): those
 * get that status and a warning. Anything else is ours: a 500 and an error line.
 */
import type { NextFunction, Request, Response } from "express";
import type { Logger } from "../logger";

export function errorHandler(log: Logger) {
  return (error: Error & { status?: unknown }, req: Request, res: Response, _next: NextFunction): void => {
    const status = typeof error.status === "number" && error.status >= 400 && error.status < 500 ? error.status : 500;
    if (status === 500) log.error(`unhandled: ${error.stack ?? error}`);
    else log.warn(`refused ${req.method} with ${status}: ${error.message}`);
    if (res.headersSent) return;
    const message = status === 500 ? "Something went wrong on our side." : error instanceof URIError ? "That URL is not valid (bad percent-encoding)." : "Bad request.";
    res.status(status).type("text/plain").send(message);
  };
}
