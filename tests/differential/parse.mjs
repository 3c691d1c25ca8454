// Parses WhatsApp exports with the npm package whatsapp-chat-parser and prints, per file, each
// message's author (null for system lines) and time in epoch milliseconds. Run with TZ=UTC.
import { readFileSync } from "node:fs";
import { parseString } from "whatsapp-chat-parser";

const out = {};
for (const file of process.argv.slice(2)) {
  const text = readFileSync(file, "utf8").replace(/^\uFEFF/, "");
  out[file] = parseString(text).map((m) => ({ author: m.author, ms: m.date.getTime() }));
}
process.stdout.write(JSON.stringify(out));
