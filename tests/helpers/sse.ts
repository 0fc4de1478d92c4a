/**
 * A Server-Sent Events reader over fetch, as EventSource reads a tRPC subscription: the client's
 * cookies, `Last-Event-ID` when resuming, and the messages (`data` parsed as JSON) with their ids.
 * tRPC's own control events (connected, ping) are left out.
 */
import type { TestClient } from "./client";
import { waitFor } from "./server";

export interface SseMessage {
  id: string | null;
  event: string;
  data: any;
  /** performance.now() when it was parsed: the bench's delivery times. */
  receivedAt: number;
}

export class SseStream {
  readonly messages: SseMessage[] = [];
  private ended = false;

  private constructor(
    readonly response: Response,
    private readonly abort: AbortController,
  ) {}

  /** Opens `procedure`'s stream (input as tRPC's httpSubscriptionLink sends it). */
  static async open(client: Pick<TestClient, "fetch">, procedure: string, { input, lastEventId, headers = {} }: { input?: unknown; lastEventId?: string; headers?: Record<string, string> } = {}): Promise<SseStream> {
    const search = input === undefined ? "" : `?input=${encodeURIComponent(JSON.stringify(input))}`;
    const abort = new AbortController();
    const response = await client.fetch(`/api/trpc/${procedure}${search}`, {
      signal: abort.signal,
      headers: { accept: "text/event-stream", ...(lastEventId ? { "last-event-id": lastEventId } : {}), ...headers },
    });
    const stream = new SseStream(response, abort);
    if (response.ok && response.body) void stream.read(response.body);
    return stream;
  }

  private async read(body: ReadableStream<Uint8Array>) {
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      const reader = body.getReader();
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
        buffer += decoder.decode(chunk.value, { stream: true });
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          this.parse(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch {
      // Cut by us or by the server: the stream is over, as EventSource would see it.
    } finally {
      this.ended = true;
    }
  }

  private parse(block: string) {
    let id: string | null = null;
    let event = "message";
    const data: string[] = [];
    for (const line of block.split("\n")) {
      const colon = line.indexOf(":");
      if (colon === 0) continue;
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") id = value;
      else if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (event === "ping" || event === "connected") return;
    this.messages.push({ id, event, data: data.length ? JSON.parse(data.join("\n")) : null, receivedAt: performance.now() });
  }

  /** The payloads of the data messages so far. */
  get data(): any[] {
    return this.messages.filter((message) => message.event === "message").map((message) => message.data);
  }

  /** The id of the last data message. */
  get lastId(): string {
    return this.messages.filter((message) => message.id).at(-1)!.id!;
  }

  /** Waits until some data message satisfies `match`; returns it. */
  waitForData(what: string, match: (data: any) => boolean, timeoutMs?: number): Promise<any> {
    return waitFor(
      what,
      () => {
        if (this.ended && !this.data.some(match)) throw new Error(`the stream ended before ${what}: ${JSON.stringify(this.messages)}`);
        return this.data.find(match);
      },
      timeoutMs,
    );
  }

  /** Cuts the connection, as a dropped network would. */
  close(): void {
    this.abort.abort();
  }
}
