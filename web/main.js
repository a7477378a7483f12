// Startup glue for the browser build: picks the signalling room URL, hands it to the game
// (globalThis.meshworkSignalling, read by the wasm `main`) with the node's ledger setup
// (globalThis.meshworkLedger: the bytes of /ledger.bin, when the node serves one), and starts it.
//
// The URL comes from the page's query (?signalling=ws://host:port/room), else from the page's
// origin: the node serves this page and runs its signalling server on the same host, port 3536.
const query = new URLSearchParams(location.search);
const scheme = location.protocol === "https:" ? "wss" : "ws";
const signalling = query.get("signalling") || `${scheme}://${location.hostname}:3536/meshwork`;
globalThis.meshworkSignalling = signalling;
document.getElementById("signalling").textContent = signalling;

const status = document.getElementById("status");
const canvas = document.getElementById("meshwork");
canvas.addEventListener("contextmenu", (e) => e.preventDefault());
canvas.focus();

// The ledger setup (genesis and faucet) from the node that served this page; without it the game
// plays with placeholder bonds.
const ledger = fetch("ledger.bin")
  .then((r) => (r.ok ? r.arrayBuffer() : null))
  .then((b) => {
    if (b) globalThis.meshworkLedger = new Uint8Array(b);
  })
  .catch(() => {});

ledger
  .then(() => import("./pkg/meshwork_sandbox.js"))
  .then(async (m) => {
    status.textContent = "running";
    try {
      await m.default();
    } catch (e) {
      // winit hands control to the browser by throwing; that is not a failure.
      if (!String(e).includes("Using exceptions for control flow")) throw e;
    }
  })
  .catch((e) => {
    status.textContent = `failed to start: ${e}`;
    console.error(e);
  });
