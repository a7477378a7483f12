//! The sandbox player: a native window, or (built for wasm32 by `scripts/build-web.sh`) the
//! browser game. Natively: `cargo run -p meshwork-sandbox -- [--signalling URL] [--ledger URL]
//! [--bot]`; `--bot` runs a headless bot player instead of a window. The ledger setup (genesis and
//! faucet) comes from the node's web server: `--ledger`, by default
//! `http://<signalling host>:3580/ledger.bin`; without one the game plays with placeholder bonds.

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    use meshwork_sandbox::DEFAULT_SIGNALLING_URL;
    let mut url = DEFAULT_SIGNALLING_URL.to_string();
    let mut bot = false;
    let mut ledger_url = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--signalling" => url = args.next().unwrap_or(url),
            "--ledger" => ledger_url = args.next(),
            "--bot" => bot = true,
            _ => {
                eprintln!(
                    "usage: meshwork-sandbox [--signalling ws://HOST:PORT/ROOM] [--ledger http://HOST:PORT/ledger.bin] [--bot]"
                );
                std::process::exit(2);
            }
        }
    }
    let ledger_url = ledger_url.unwrap_or_else(|| meshwork_sandbox::ledger::setup_url(&url));
    let ledger = match meshwork_sandbox::ledger::fetch_setup(&ledger_url) {
        Ok(setup) => Some(setup),
        Err(e) => {
            eprintln!("no ledger setup from {ledger_url} ({e}): playing with placeholder bonds");
            None
        }
    };
    if bot {
        let mut app = meshwork_sandbox::bot_app_with(
            meshwork_sandbox::matchbox_config(&url),
            false,
            ledger,
            None,
        );
        app.add_plugins(bevy::log::LogPlugin::default());
        loop {
            app.update();
            std::thread::sleep(std::time::Duration::from_millis(16));
        }
    }
    run_window(url, ledger);
}

#[cfg(all(not(target_arch = "wasm32"), feature = "window"))]
fn run_window(url: String, ledger: Option<meshwork_sandbox::ledger::LedgerSetup>) {
    let options = meshwork_sandbox::window::WindowOptions {
        signalling_url: url,
        canvas: None,
        ledger,
    };
    meshwork_sandbox::window::player_app(&options).run();
}

#[cfg(all(not(target_arch = "wasm32"), not(feature = "window")))]
fn run_window(_url: String, _ledger: Option<meshwork_sandbox::ledger::LedgerSetup>) {
    eprintln!("built without the `window` feature: only --bot is available");
    std::process::exit(2);
}

/// In the browser the page's glue (`web/main.js`) puts the signalling URL in
/// `globalThis.meshworkSignalling` and the node's ledger setup (bytes, if it serves one) in
/// `globalThis.meshworkLedger` before starting us.
#[cfg(target_arch = "wasm32")]
fn main() {
    let url = js_sys::Reflect::get(
        &js_sys::global(),
        &wasm_bindgen::JsValue::from_str("meshworkSignalling"),
    )
    .ok()
    .and_then(|v| v.as_string())
    .unwrap_or_else(|| meshwork_sandbox::DEFAULT_SIGNALLING_URL.to_string());
    let ledger = js_sys::Reflect::get(
        &js_sys::global(),
        &wasm_bindgen::JsValue::from_str("meshworkLedger"),
    )
    .ok()
    .filter(|v| v.is_object())
    .map(|v| js_sys::Uint8Array::new(&v).to_vec())
    // Bytes that do not decode: no ledger (the HUD says so).
    .and_then(|bytes| meshwork_sandbox::ledger::LedgerSetup::decode(&bytes).ok());
    let options = meshwork_sandbox::window::WindowOptions {
        signalling_url: url,
        canvas: Some("#meshwork".into()),
        ledger,
    };
    meshwork_sandbox::window::player_app(&options).run();
}
