/**
 * GET /admin/export.zip?scope=revealed|finished — for the admin only: the PNGs plus
 * metadata.json and metadata.csv (server/domain/export.ts), streamed as a zip one file at a
 * time, so an export of thousands of images never sits in memory. PNGs are stored as they are
 * (already compressed); yazl switches to ZIP64 past 4 GiB.
 */
import { stat } from "node:fs/promises";
import { pipeline } from "node:stream";
import type { Request, Response } from "express";
import { ZipFile } from "yazl";
import { recordAudit } from "../domain/audit";
import { auditLogCsv, EXPORT_SCOPES, exportItems, metadataCsv, type ExportScope } from "../domain/export";
import type { ReportError } from "../error-ref";
import type { RequestContext } from "./request-context";

const isScope = (value: unknown): value is ExportScope => EXPORT_SCOPES.includes(value as ExportScope);

export async function serveExport(context: RequestContext, req: Request, res: Response, reportError: ReportError): Promise<void> {
  const { identity, services } = context;
  // As the admin pages do: a lapsed session logs in again; a moderator may not take every image.
  const account = identity.account();
  if (!account) return void res.redirect(302, "/admin/login");
  if (account.role !== "admin") return void res.status(403).type("text/plain").send("Only an admin can export the images.");
  const scope = req.query.scope ?? "revealed";
  if (!isScope(scope)) return void res.status(400).type("text/plain").send(`scope must be ${EXPORT_SCOPES.join(" or ")}.`);

  const items = exportItems(services.db, scope);
  const present = await Promise.all(
    items.map(({ fileName }) =>
      stat(services.jobs.imagePath(fileName)).then(
        (stats) => stats.isFile(),
        () => false,
      ),
    ),
  );
  // A file deleted by hand is left out, and its record says so, rather than breaking the zip.
  items.forEach((item, i) => {
    if (!present[i]) item.record.file = null;
  });
  const records = items.map((item) => item.record);

  const zip = new ZipFile();
  const mtime = new Date();
  zip.addBuffer(Buffer.from(`${JSON.stringify(records, null, 2)}\n`), "metadata.json", { mtime });
  zip.addBuffer(Buffer.from(metadataCsv(records)), "metadata.csv", { mtime });
  // The record of who did what goes with the images, this export included.
  recordAudit(services.db, { actor: account.name, action: "export.download", details: { scope, images: items.filter((item) => item.record.file).length } });
  zip.addBuffer(Buffer.from(auditLogCsv(services.db)), "audit-log.csv", { mtime });
  for (const { fileName, record } of items) {
    if (record.file) zip.addFile(services.jobs.imagePath(fileName), record.file, { compress: false, mtime: new Date(record.finishedAt) });
  }
  zip.end();
  // A file that vanished after the check: the zip cannot be finished, so the download fails visibly.
  zip.on("error", (error: Error) => {
    reportError(error, "GET /admin/export.zip");
    res.destroy(error);
  });

  const day = mtime.toISOString().slice(0, 10);
  res.set({ "Content-Type": "application/zip", "Content-Disposition": `attachment; filename="promptgate-${scope}-${day}.zip"` });
  pipeline(zip.outputStream, res, (error) => {
    // A download the browser cancelled is not our error.
    if (error && error.code !== "ERR_STREAM_PREMATURE_CLOSE") reportError(error, "GET /admin/export.zip");
  });
}
