// Parse each Mermaid file named on the command line with mermaid's own parser
// (the one GitHub renders with); print "ok <file>" or "error <file>: <message>".
import { JSDOM } from "jsdom";
import { readFileSync } from "fs";

const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });

let failed = 0;
for (const file of process.argv.slice(2)) {
  try {
    await mermaid.parse(readFileSync(file, "utf8"));
    console.log(`ok ${file}`);
  } catch (error) {
    failed += 1;
    console.log(`error ${file}: ${String(error.message || error).split("\n").join(" | ")}`);
  }
}
process.exit(failed ? 1 : 0);
