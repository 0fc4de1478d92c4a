/**
 * A real nginx (Debian's package) for tests, running docs/deploy/nginx.conf with its addresses
 * swapped for the test's: its own prefix, config, pid, temp and log files under a temp dir, in
 * the foreground on a free port. Installed first if missing (tests/helpers/debian.ts).
 */
import { execFile, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Agent } from "undici";
import { ensureProgram } from "./debian";
import { freePort, ROOT } from "./processes";
import { waitFor } from "./server";

const run = promisify(execFile);

export interface RunningNginx {
  url: string;
  /** With `tls`: for fetch (and TestClient), trusting nginx's self-signed certificate. */
  dispatcher: Agent | undefined;
  output(): string;
  close(): Promise<void>;
}

export interface NginxOptions {
  promptgatePort: number;
  upstreamPort: number;
  /** nginx connects to promptgate from this loopback address (e.g. 127.0.0.2), so it can be told apart from direct clients. */
  bindAddress?: string;
  /**
   * Stands in for an identity proxy (oauth2-proxy): the shipped config's blanked identity
   * headers take the values of the client's X-Test-User, -Email, -Preferred-Username, -Groups.
   */
  testIdentity?: boolean;
  /** Listens with TLS on a fresh self-signed certificate, as a site in production does: `$scheme` is https. */
  tls?: boolean;
}

/** Starts nginx with the shipped config, in front of promptgate at `promptgatePort` and a protected upstream at `upstreamPort`. */
export async function startNginx({ promptgatePort, upstreamPort, bindAddress, testIdentity, tls }: NginxOptions): Promise<RunningNginx> {
  const binary = await ensureProgram("nginx", ["nginx"]);
  const prefix = mkdtempSync(path.join(tmpdir(), "promptgate-nginx-"));
  for (const dir of ["logs", "temp/body", "temp/proxy", "temp/fastcgi", "temp/uwsgi", "temp/scgi"]) mkdirSync(path.join(prefix, dir), { recursive: true });
  const port = await freePort();
  const shipped = readFileSync(path.join(ROOT, "docs/deploy/nginx.conf"), "utf8");
  let site = shipped
    .replace("server 127.0.0.1:3000;", `server 127.0.0.1:${promptgatePort};`)
    .replace("server 127.0.0.1:7860;", `server 127.0.0.1:${upstreamPort};`)
    .replace("listen 80;", `listen 127.0.0.1:${port};`);
  if (site === shipped) throw new Error("docs/deploy/nginx.conf no longer has the addresses this helper replaces");
  const identityHeaders = ["User", "Email", "Preferred-Username", "Groups"];
  if (testIdentity) {
    for (const name of identityHeaders) {
      const blank = `proxy_set_header X-Forwarded-${name} "";`;
      if (!site.includes(blank)) throw new Error(`docs/deploy/nginx.conf no longer blanks X-Forwarded-${name}`);
      site = site.replace(blank, `proxy_set_header X-Forwarded-${name} $http_x_test_${name.toLowerCase().replace("-", "_")};`);
    }
  }
  if (bindAddress) {
    // Every connection nginx makes (pages, the verify and login subrequests) comes from there.
    site = site.replace(`listen 127.0.0.1:${port};`, `listen 127.0.0.1:${port};\n        proxy_bind ${bindAddress};`);
  }
  let ca: string | null = null;
  if (tls) {
    const openssl = await ensureProgram("openssl", ["openssl"]);
    const [key, cert] = [path.join(prefix, "key.pem"), path.join(prefix, "cert.pem")];
    await run(openssl, ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]);
    ca = readFileSync(cert, "utf8");
    site = site.replace(`listen 127.0.0.1:${port};`, `listen 127.0.0.1:${port} ssl;\n    ssl_certificate ${cert};\n    ssl_certificate_key ${key};`);
  }
  writeFileSync(path.join(prefix, "site.conf"), site);
  writeFileSync(
    path.join(prefix, "nginx.conf"),
    [
      // As root, workers would switch to an unprivileged user that cannot use this temp dir.
      process.getuid?.() === 0 ? "user root;" : "",
      "worker_processes 1;",
      `pid ${prefix}/nginx.pid;`,
      `error_log ${prefix}/logs/error.log warn;`,
      "events { worker_connections 64; }",
      "http {",
      `  access_log ${prefix}/logs/access.log;`,
      `  client_body_temp_path ${prefix}/temp/body;`,
      `  proxy_temp_path ${prefix}/temp/proxy;`,
      `  fastcgi_temp_path ${prefix}/temp/fastcgi;`,
      `  uwsgi_temp_path ${prefix}/temp/uwsgi;`,
      `  scgi_temp_path ${prefix}/temp/scgi;`,
      `  include ${prefix}/site.conf;`,
      "}",
      "",
    ].join("\n"),
  );

  const child = spawn(binary, ["-p", prefix, "-c", path.join(prefix, "nginx.conf"), "-g", "daemon off;"], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  // Never outlives the test process, even one that dies before its cleanups run.
  const orphaned = () => child.kill("SIGKILL");
  process.once("exit", orphaned);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const errorLog = () => {
    try {
      return readFileSync(path.join(prefix, "logs/error.log"), "utf8");
    } catch {
      return "";
    }
  };
  const url = `${tls ? "https" : "http"}://127.0.0.1:${port}`;
  const dispatcher = ca ? new Agent({ connect: { ca } }) : undefined;
  const close = async () => {
    process.off("exit", orphaned);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
    rmSync(prefix, { recursive: true, force: true });
  };
  try {
    await waitFor(`nginx to listen on ${port}`, async () => {
      if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}:\n${output}${errorLog()}`);
      return fetch(`${url}/healthz`, { dispatcher } as RequestInit).then(
        (response) => response.ok,
        () => false,
      );
    }, 10_000);
  } catch (error) {
    await close();
    throw error;
  }
  return { url, dispatcher, output: () => output + errorLog(), close };
}
