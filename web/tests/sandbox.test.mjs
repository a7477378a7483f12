// Browser test of the Meshwork sandbox: the node (signalling, web server, 6 referee peers, three
// bot players in two regions, one of them cheating) and two tabs of real Chromium playing in
// one session (with a bot) in the region they appear in. The cheating bot's tampered root is
// caught by the referees of its region's session, its session bond is forfeited on the node's
// ledger (slashed) and it is dropped from that session; both tabs post session bonds on that
// ledger before they play, and both referee the other region's checkpoints as attesters;
// tab A places a block with a real mouse click on the canvas; tab B must see it in its own
// world once the referees have finalised the checkpoint holding it. Screenshots of both tabs
// are saved as artifacts (paths printed).
//
// Run from the repo root after scripts/build-contracts.sh and scripts/build-web.sh:
//   MESHWORK_BIN=target/.../meshwork node web/tests/sandbox.test.mjs
// Env: MESHWORK_BIN (the node binary), MESHWORK_ARTIFACTS (default test-artifacts/web),
// CHROMIUM (default /usr/bin/chromium), MESHWORK_WEB_TEST_SECONDS (overall limit, default 420).
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { chromium } from "playwright-core";

const bin = process.env.MESHWORK_BIN;
if (!bin) throw new Error("MESHWORK_BIN must name the meshwork binary");
const artifacts = resolve(process.env.MESHWORK_ARTIFACTS || "test-artifacts/web");
const limitMs = 1000 * Number(process.env.MESHWORK_WEB_TEST_SECONDS || 420);
mkdirSync(artifacts, { recursive: true });

const started = Date.now();
const log = (...a) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s]`, ...a);
const timer = setTimeout(() => fail(`no result within ${limitMs / 1000} s`), limitMs);

let node;
let browser;
let botCheats = 0;
let forfeitVotes = 0;
let botForfeits = 0;
async function cleanup() {
  clearTimeout(timer);
  if (browser) await browser.close().catch(() => {});
  if (node && node.exitCode === null) node.kill("SIGTERM");
}
async function fail(why) {
  console.error(`FAIL: ${why}`);
  await cleanup();
  process.exit(1);
}

// 1. The node on free loopback ports, with referees and three bot players (one cheating); wait
// for the URL it prints.
node = spawn(
  bin,
  [
    "--signalling-port", "0", "--web-port", "0", "--web-dir", "web",
    "--referees", "6", "--referees-per-checkpoint", "4", "--players", "3", "--cheaters", "1", "--seconds", "0",
  ],
  { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: process.env.RUST_LOG || "warn" } },
);
node.stderr.on("data", (d) => process.stderr.write(`[node] ${d}`));
const url = await new Promise((ok, ko) => {
  let out = "";
  node.stdout.on("data", (d) => {
    out += d;
    const m = out.match(/open (http:\/\/\S+)/);
    if (m) ok(m[1]);
    // The node's periodic report of its players and referees, for the test log; the bots'
    // count of cheats caught is one of the places a caught cheat shows.
    for (const line of String(d).split("\n")) {
      if (/^(player|referees|ledger)/.test(line)) log(`[node] ${line}`);
      const caught = line.match(/(\d+) cheats caught/);
      if (caught) botCheats = Math.max(botCheats, Number(caught[1]));
      const forfeited = line.match(/(\d+) bonds forfeited/);
      if (forfeited) botForfeits = Math.max(botForfeits, Number(forfeited[1]));
      const votes = line.match(/\((\d+) forfeits of bonds\)/);
      if (votes) forfeitVotes = Math.max(forfeitVotes, Number(votes[1]));
    }
  });
  node.on("exit", (code) => ko(new Error(`node exited (${code}) before printing a URL:\n${out}`)));
}).catch((e) => fail(e.message));
log(`node serves ${url}`);

// 2. Real Chromium, headless, software WebGL; background tabs are not throttled (both tabs play).
browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    // Real local addresses in ICE candidates: the native peers cannot resolve mDNS names.
    // DTLS 1.2 without post-quantum key shares: the native peers' DTLS stack does not speak
    // DTLS 1.3, and Chromium's 1.3 ClientHello does not reach a 1.2 handshake with it.
    "--disable-features=WebRtcHideLocalIpsWithMdns,PostQuantumKyber,WebRtcPqcForDtls",
    "--force-fieldtrials=WebRTC-ForceDtls13/Disabled/WebRTC-EnableDtlsPqc/Disabled/",
    "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
  ],
});
// Each tab in its own context (own window): a page hidden behind another stops getting animation
// frames, and the game runs in them.
const open = async (name) => {
  const context = await browser.newContext({ viewport: { width: 1200, height: 720 } });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") log(`[${name} console] ${m.text()}`);
  });
  page.on("pageerror", (e) => log(`[${name} page error] ${e.message}`));
  await page.goto(url);
  return page;
};
const a = await open("A");
const b = await open("B");
const state = async (page) => {
  const s = await page.evaluate(() => globalThis.meshworkState || null);
  return s ? JSON.parse(s) : null;
};
const brief = (s) => s && JSON.stringify({ ...s, blocks: s.blocks.length, final_blocks: s.final_blocks.length, root: s.root.slice(0, 8) });
const waitFor = async (what, fn, ms) => {
  const until = Date.now() + ms;
  let next = Date.now() + 10_000;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > next) {
      next += 10_000;
      log(`still waiting for ${what}: A ${brief(await state(a))}, B ${brief(await state(b))}`);
    }
    if (Date.now() > until) await fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
};

// 3. The referees catch the cheating bot (its claimed root is not what re-execution gives):
// whoever shared a session with it reports the verdict, a tab or one of the node's bots.
await waitFor("the cheating bot caught by the referees", async () => {
  for (const page of [a, b]) {
    const s = await state(page);
    if (s && s.cheats >= 1) return true;
  }
  return botCheats >= 1;
}, 180_000);
log("cheat detected by the referees of a session the cheating bot played in");

// 3b. ...and slashed: a member of its session submitted the referees' verdict to the node's
// validators and the forfeit was certified (a tab's or a bot's count of bonds forfeited).
await waitFor("the cheating bot's session bond forfeited", async () => {
  for (const page of [a, b]) {
    const s = await state(page);
    if (s && s.forfeited >= 1) return true;
  }
  return botForfeits >= 1;
}, 60_000);
log(`the cheater's bond was forfeited (validators' forfeit votes so far: ${forfeitVotes})`);

// 4. Both tabs play in one running session that has finalised a checkpoint.
for (const [name, page] of [["A", a], ["B", b]]) {
  const s = await waitFor(`tab ${name} playing`, async () => {
    const s = await state(page);
    return s && s.links >= 1 && s.synced && s.roster >= 2 && s.finalised >= 1 ? s : null;
  }, 120_000);
  log(`tab ${name}: peer ${s.peer.slice(0, 8)}, ${s.links} links, session of ${s.roster}, finalised height ${s.height}, ${s.blocks.length} blocks, wallet ${s.wallet}, bond ${s.bond}`);
  if (!(s.bond >= 100 && s.wallet >= 0)) await fail(`tab ${name} plays without a session bond on the ledger`);
}

// 4b. Every player's client referees other sessions: the node's bots play two regions, the
// tabs share the second with one bot, so the first region's session draws the tabs (and that
// bot) as attesters of its checkpoints.
for (const [name, page] of [["A", a], ["B", b]]) {
  const s = await waitFor(`tab ${name} refereeing another session`, async () => {
    const s = await state(page);
    return s && s.duties >= 1 ? s : null;
  }, 90_000);
  log(`tab ${name} in region (${s.region}) refereed ${s.duties} checkpoints of other sessions`);
}

// 5. Tab A clicks an empty cell of its region (cell (x, y) is drawn at canvas pixel
// 20 + 20x + 10, 20 + 20y + 10; a region is 10 x 10 cells).
const before = await state(a);
const taken = new Set(before.blocks.map(([x, y]) => `${x},${y}`));
const [rx, ry] = before.region;
let cell;
for (let y = ry * 10 + 1; y < ry * 10 + 9 && !cell; y++) for (let x = rx * 10 + 1; x < rx * 10 + 9 && !cell; x++) if (!taken.has(`${x},${y}`)) cell = [x, y];
if (!cell) await fail(`no free cell in region (${before.region})`);
const canvas = await a.$("canvas#meshwork");
await canvas.click({ position: { x: 20 + 20 * cell[0] + 10, y: 20 + 20 * cell[1] + 10 } });
log(`tab A clicked cell (${cell})`);
const has = (s) => s && s.blocks.some(([x, y]) => x === cell[0] && y === cell[1]);
const hasFinal = (s) => s && s.final_blocks.some(([x, y]) => x === cell[0] && y === cell[1]);
const sa = await waitFor("the block in tab A's world", async () => { const s = await state(a); return has(s) ? s : null; }, 20_000);
log(`tab A placed it; balance ${before.balance} -> ${sa.balance}`);
if (!(sa.balance < before.balance)) await fail("the block was not paid for");
const sb = await waitFor("the block finalised in tab B's world", async () => { const s = await state(b); return hasFinal(s) ? s : null; }, 30_000);
log(`tab B sees the block at (${cell}) finalised at height ${sb.height} (${sb.final_blocks.length} blocks)`);

// 6. Artifacts: both tabs after a moment to draw.
await new Promise((r) => setTimeout(r, 1000));
const shotA = `${artifacts}/tab-a.png`;
const shotB = `${artifacts}/tab-b.png`;
await a.screenshot({ path: shotA });
await b.screenshot({ path: shotB });
log(`screenshots: ${shotA} ${shotB}`);
console.log("PASS: the cheating bot was caught; tab A placed a block, tab B sees it finalised");
await cleanup();
process.exit(0);
