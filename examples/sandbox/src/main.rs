//! The sandbox player: a native window, or (built for wasm32 by `scripts/build-web.sh`) the
//! browser game. Natively: `cargo run -p meshwork-sandbox -- [--signalling URL] [--bot]`;
//! `--bot` runs a headless bot player instead of a window.

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    use meshwork_sandbox::DEFAULT_SIGNALLING_URL;
    let mut url = DEFAULT_SIGNALLING_URL.to_string();
    let mut bot = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--signalling" => url = args.next().unwrap_or(url),
            "--bot" => bot = true,
            _ => {
                eprintln!("usage: meshwork-sandbox [--signalling ws://HOST:PORT/ROOM] [--bot]");
                std::process::exit(2);
            }
        }
    }
    if bot {
        let mut app = meshwork_sandbox::bot_app(meshwork_sandbox::matchbox_config(&url));
        app.add_plugins(bevy::log::LogPlugin::default());
        loop {
            app.update();
            std::thread::sleep(std::time::Duration::from_millis(16));
        }
    }
    run_window(url);
}

#[cfg(all(not(target_arch = "wasm32"), feature = "window"))]
fn run_window(url: String) {
    let options = meshwork_sandbox::window::WindowOptions {
        signalling_url: url,
        canvas: None,
    };
    meshwork_sandbox::window::player_app(&options).run();
}

#[cfg(all(not(target_arch = "wasm32"), not(feature = "window")))]
fn run_window(_url: String) {
    eprintln!("built without the `window` feature: only --bot is available");
    std::process::exit(2);
}

/// In the browser the page's glue (`web/index.html`) puts the signalling URL in
/// `globalThis.meshworkSignalling` before starting us.
#[cfg(target_arch = "wasm32")]
fn main() {
    let url = js_sys::Reflect::get(
        &js_sys::global(),
        &wasm_bindgen::JsValue::from_str("meshworkSignalling"),
    )
    .ok()
    .and_then(|v| v.as_string())
    .unwrap_or_else(|| meshwork_sandbox::DEFAULT_SIGNALLING_URL.to_string());
    let options = meshwork_sandbox::window::WindowOptions {
        signalling_url: url,
        canvas: Some("#meshwork".into()),
    };
    meshwork_sandbox::window::player_app(&options).run();
}
