//! The windowed game (native window or browser canvas): the world grid, blocks and avatars,
//! keyboard movement, clicks that place and remove blocks, the HUD and the mesh map.
//!
//! Screen layout (logical pixels, camera at the origin): the world on the left, one
//! [`CELL_PX`]-square per cell; the HUD text and the mesh map on the right.

use std::collections::BTreeMap;

use bevy::prelude::*;
use bevy::window::PrimaryWindow;
use meshwork::bevy::prelude::*;

use crate::game::{Game, PlacedBlock, SandboxPlugin, SandboxSystems, TakeAction, cell_of};
use crate::world::{
    Action, BLOCK_PRICE, REGION_SIZE, REGIONS_X, REGIONS_Y, cells_x, cells_y, region_of,
};

/// Side of a cell on screen.
pub const CELL_PX: f32 = 20.0;
/// Window size.
pub const WINDOW_PX: (u32, u32) = (1180, 660);
/// Cells per second the local avatar walks.
const SPEED: f32 = 6.0;
/// Left edge of the world on screen (x) and its top (y), in world coordinates.
const WORLD_LEFT: f32 = -(WINDOW_PX.0 as f32) / 2.0 + 20.0;
const WORLD_TOP: f32 = WINDOW_PX.1 as f32 / 2.0 - 20.0;
/// The mesh map: centre and radius.
const MAP_CENTRE: Vec2 = Vec2::new(
    WINDOW_PX.0 as f32 / 2.0 - 170.0,
    -(WINDOW_PX.1 as f32) / 2.0 + 125.0,
);
const MAP_RADIUS: f32 = 100.0;

/// Options of the windowed game.
#[derive(Debug, Clone)]
pub struct WindowOptions {
    /// The signalling room URL.
    pub signalling_url: String,
    /// The browser canvas to draw into (`None` natively).
    pub canvas: Option<String>,
    /// The deployment's ledger (session bonds on it), if the node offered one.
    pub ledger: Option<crate::ledger::LedgerSetup>,
}

/// The windowed player: `DefaultPlugins` with a window, Meshwork over matchbox, the sandbox, and
/// this module's rendering and input.
pub fn player_app(options: &WindowOptions) -> App {
    let mut app = App::new();
    app.add_plugins(DefaultPlugins.set(WindowPlugin {
        primary_window: Some(Window {
            title: "Meshwork sandbox".into(),
            resolution: WINDOW_PX.into(),
            canvas: options.canvas.clone(),
            fit_canvas_to_parent: false,
            prevent_default_event_handling: true,
            ..default()
        }),
        ..default()
    }))
    .insert_resource(ClearColor(Color::srgb(0.07, 0.08, 0.10)))
    .add_plugins(MeshworkPlugin::new(crate::matchbox_config(
        &options.signalling_url,
    )))
    .add_plugins(SandboxPlugin {
        ledger: options.ledger.clone(),
        ..default()
    })
    .add_plugins(SandboxWindowPlugin);
    app
}

/// Rendering and input for a player with a window.
#[derive(Debug, Clone, Copy, Default)]
pub struct SandboxWindowPlugin;

impl Plugin for SandboxWindowPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Drawn>()
            .init_resource::<Selected>()
            .add_systems(Startup, setup)
            .add_systems(
                Update,
                (
                    (walk, click).in_set(SandboxSystems::Input),
                    (sync_blocks, sync_avatars, draw_world, draw_map, hud)
                        .in_set(SandboxSystems::Draw),
                ),
            );
        #[cfg(target_arch = "wasm32")]
        app.add_systems(Update, expose_state.in_set(SandboxSystems::Draw));
    }
}

/// Block kind the next click places (keys 1–3).
#[derive(Resource, Debug)]
struct Selected(u8);

impl Default for Selected {
    fn default() -> Self {
        Self(1)
    }
}

/// Entities drawn for blocks and avatars.
#[derive(Resource, Default)]
struct Drawn {
    avatars: BTreeMap<PeerId, Entity>,
}

#[derive(Component)]
struct Hud;

#[derive(Component)]
struct Me;

/// Screen position of the centre of world position `pos` (in cells; y grows downwards).
fn to_screen(pos: Vec2) -> Vec2 {
    Vec2::new(WORLD_LEFT + pos.x * CELL_PX, WORLD_TOP - pos.y * CELL_PX)
}

/// The world position (in cells) under screen point `p`, if inside the world.
fn from_screen(p: Vec2) -> Option<Vec2> {
    let pos = Vec2::new((p.x - WORLD_LEFT) / CELL_PX, (WORLD_TOP - p.y) / CELL_PX);
    let inside =
        pos.x >= 0.0 && pos.y >= 0.0 && pos.x < cells_x() as f32 && pos.y < cells_y() as f32;
    inside.then_some(pos)
}

fn kind_colour(kind: u8) -> Color {
    match kind {
        1 => Color::srgb(0.85, 0.55, 0.25),
        2 => Color::srgb(0.35, 0.70, 0.40),
        3 => Color::srgb(0.40, 0.55, 0.90),
        _ => Color::srgb(0.7, 0.7, 0.7),
    }
}

/// A stable colour per peer (hue from its id).
fn peer_colour(peer: &PeerId) -> Color {
    Color::hsl(f32::from(peer.0[0]) / 255.0 * 360.0, 0.7, 0.6)
}

fn setup(mut commands: Commands, game: Res<Game>) {
    // No multisampling and no tonemapping: flat 2D colours do not need them, and in a browser
    // without a GPU (software WebGL) they multiply the cost of every frame.
    commands.spawn((
        Camera2d,
        Msaa::Off,
        bevy::core_pipeline::tonemapping::Tonemapping::None,
    ));
    commands.spawn((
        Me,
        Sprite::from_color(Color::WHITE, Vec2::splat(CELL_PX * 0.8)),
        Transform::from_translation(to_screen(game.pos).extend(3.0)),
    ));
    commands.spawn((
        Hud,
        Text::new(""),
        TextFont::from_font_size(FontSize::Px(13.0)),
        TextColor(Color::srgb(0.9, 0.9, 0.9)),
        Node {
            position_type: PositionType::Absolute,
            right: Val::Px(12.0),
            top: Val::Px(12.0),
            width: Val::Px(320.0),
            ..default()
        },
    ));
}

fn walk(
    time: Res<Time>,
    keys: Res<ButtonInput<KeyCode>>,
    mut game: ResMut<Game>,
    mut selected: ResMut<Selected>,
    mut me: Query<&mut Transform, With<Me>>,
) {
    let mut dir = Vec2::ZERO;
    if keys.any_pressed([KeyCode::ArrowLeft, KeyCode::KeyA]) {
        dir.x -= 1.0;
    }
    if keys.any_pressed([KeyCode::ArrowRight, KeyCode::KeyD]) {
        dir.x += 1.0;
    }
    if keys.any_pressed([KeyCode::ArrowUp, KeyCode::KeyW]) {
        dir.y -= 1.0;
    }
    if keys.any_pressed([KeyCode::ArrowDown, KeyCode::KeyS]) {
        dir.y += 1.0;
    }
    for (key, kind) in [
        (KeyCode::Digit1, 1),
        (KeyCode::Digit2, 2),
        (KeyCode::Digit3, 3),
    ] {
        if keys.just_pressed(key) {
            selected.0 = kind;
        }
    }
    if dir != Vec2::ZERO {
        let step = dir.normalize() * SPEED * time.delta_secs().min(0.1);
        let max = Vec2::new(cells_x() as f32 - 0.01, cells_y() as f32 - 0.01);
        game.pos = (game.pos + step).clamp(Vec2::ZERO, max);
    }
    if let Ok(mut t) = me.single_mut() {
        t.translation = to_screen(game.pos).extend(3.0);
    }
}

fn click(
    buttons: Res<ButtonInput<MouseButton>>,
    window: Query<&Window, With<PrimaryWindow>>,
    camera: Query<(&Camera, &GlobalTransform)>,
    game: Res<Game>,
    selected: Res<Selected>,
    mut act: MessageWriter<TakeAction>,
) {
    let left = buttons.just_pressed(MouseButton::Left);
    let right = buttons.just_pressed(MouseButton::Right);
    if !left && !right {
        return;
    }
    let (Ok(window), Ok((camera, at))) = (window.single(), camera.single()) else {
        return;
    };
    let Some(cursor) = window.cursor_position() else {
        return;
    };
    let Ok(p) = camera.viewport_to_world_2d(at, cursor) else {
        return;
    };
    let Some(pos) = from_screen(p) else {
        return;
    };
    let (x, y) = cell_of(pos);
    let occupied = game
        .world
        .as_ref()
        .is_ok_and(|w| w.blocks().contains_key(&(x, y)));
    let action = if right || occupied {
        Action::Remove { x, y }
    } else {
        Action::Place {
            x,
            y,
            kind: selected.0,
        }
    };
    act.write(TakeAction(action));
}

/// Blocks are contract state: the entities `ContractStatePlugin` keeps for them get a sprite
/// when they appear or change (and lose it with the entity when the block goes).
fn sync_blocks(
    mut commands: Commands,
    blocks: Query<(Entity, &PlacedBlock), Changed<PlacedBlock>>,
) {
    for (e, b) in &blocks {
        let (x, y) = b.cell;
        let centre = to_screen(Vec2::new(x as f32 + 0.5, y as f32 + 0.5));
        commands.entity(e).insert((
            Sprite::from_color(kind_colour(b.block.kind), Vec2::splat(CELL_PX - 2.0)),
            Transform::from_translation(centre.extend(1.0)),
        ));
    }
}

fn sync_avatars(
    mut commands: Commands,
    game: Res<Game>,
    mut drawn: ResMut<Drawn>,
    mut transforms: Query<&mut Transform>,
) {
    let gone: Vec<PeerId> = drawn
        .avatars
        .keys()
        .filter(|p| !game.avatars.contains_key(p))
        .copied()
        .collect();
    for p in gone {
        if let Some(e) = drawn.avatars.remove(&p) {
            commands.entity(e).despawn();
        }
    }
    for (peer, avatar) in &game.avatars {
        let at = to_screen(avatar.pos).extend(2.0);
        match drawn.avatars.get(peer) {
            Some(e) => {
                if let Ok(mut t) = transforms.get_mut(*e) {
                    // Presence arrives at 10 Hz: glide towards it.
                    t.translation = t.translation.lerp(at, 0.3);
                }
            }
            None => {
                let size = if avatar.bot { 0.55 } else { 0.7 };
                let e = commands
                    .spawn((
                        Sprite::from_color(peer_colour(peer), Vec2::splat(CELL_PX * size)),
                        Transform::from_translation(at),
                    ))
                    .id();
                drawn.avatars.insert(*peer, e);
            }
        }
    }
}

fn draw_world(mut gizmos: Gizmos, game: Res<Game>) {
    let faint = Color::srgba(1.0, 1.0, 1.0, 0.06);
    let border = Color::srgba(1.0, 1.0, 1.0, 0.35);
    let (w, h) = (cells_x(), cells_y());
    for x in 0..=w {
        let colour = if x % u32::from(REGION_SIZE) == 0 {
            border
        } else {
            faint
        };
        let top = to_screen(Vec2::new(x as f32, 0.0));
        let bottom = to_screen(Vec2::new(x as f32, h as f32));
        gizmos.line_2d(top, bottom, colour);
    }
    for y in 0..=h {
        let colour = if y % u32::from(REGION_SIZE) == 0 {
            border
        } else {
            faint
        };
        let left = to_screen(Vec2::new(0.0, y as f32));
        let right = to_screen(Vec2::new(w as f32, y as f32));
        gizmos.line_2d(left, right, colour);
    }
    // The local player's region.
    let (cx, cy) = game.cell();
    let (rx, ry) = region_of(cx, cy);
    let s = f32::from(REGION_SIZE);
    let centre = to_screen(Vec2::new(
        (f32::from(rx) + 0.5) * s,
        (f32::from(ry) + 0.5) * s,
    ));
    gizmos.rect_2d(
        centre,
        Vec2::splat(s * CELL_PX - 2.0),
        Color::srgba(1.0, 0.9, 0.3, 0.6),
    );
}

/// Peers as dots on a circle (ordered by id, so every player draws the same map), links as lines.
fn draw_map(mut gizmos: Gizmos, game: Res<Game>, peers: Res<Peers>) {
    gizmos.circle_2d(
        MAP_CENTRE,
        MAP_RADIUS + 14.0,
        Color::srgba(1.0, 1.0, 1.0, 0.15),
    );
    let mut nodes: Vec<PeerId> = game.avatars.keys().copied().collect();
    nodes.push(game.me);
    nodes.extend(peers.linked.keys().copied());
    nodes.sort();
    nodes.dedup();
    let n = nodes.len().max(1) as f32;
    let at: BTreeMap<PeerId, Vec2> = nodes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let a = i as f32 / n * std::f32::consts::TAU;
            (*p, MAP_CENTRE + Vec2::new(a.cos(), a.sin()) * MAP_RADIUS)
        })
        .collect();
    let line = Color::srgba(0.5, 0.8, 1.0, 0.5);
    let mut edge = |a: &PeerId, b: &PeerId| {
        if let (Some(pa), Some(pb)) = (at.get(a), at.get(b)) {
            gizmos.line_2d(*pa, *pb, line);
        }
    };
    for p in peers.linked.keys() {
        edge(&game.me, p);
    }
    for (p, avatar) in &game.avatars {
        for q in &avatar.links {
            edge(p, q);
        }
    }
    for (p, pos) in &at {
        let (colour, r) = if *p == game.me {
            (Color::WHITE, 6.0)
        } else {
            (peer_colour(p), 4.0)
        };
        gizmos.circle_2d(*pos, r, colour);
        gizmos.circle_2d(*pos, r / 2.0, colour);
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "the HUD shows a bit of everything"
)]
fn hud(
    time: Res<Time<Real>>,
    mut last_ms: Local<u128>,
    game: Res<Game>,
    play: Res<crate::session::Play>,
    diagnostics: Res<bevy::diagnostic::DiagnosticsStore>,
    peers: Res<Peers>,
    selected: Res<Selected>,
    wallet: Option<Res<Wallet>>,
    mut text: Query<&mut Text, With<Hud>>,
) {
    // Four times a second: laying text out every frame is a large share of a frame in a browser
    // without a GPU.
    let now = time.elapsed().as_millis();
    if now.saturating_sub(*last_ms) < 250 && *last_ms != 0 {
        return;
    }
    *last_ms = now.max(1);
    let Ok(mut text) = text.single_mut() else {
        return;
    };
    let rtts: Vec<u32> = peers.linked.values().filter_map(|p| p.rtt_ms).collect();
    let rtt = if rtts.is_empty() {
        "-".to_string()
    } else {
        format!(
            "{:.1} ms",
            f64::from(rtts.iter().sum::<u32>()) / rtts.len() as f64
        )
    };
    let (cx, cy) = game.cell();
    let (rx, ry) = region_of(cx, cy);
    let in_region = game
        .avatars
        .values()
        .filter(|a| {
            let (x, y) = cell_of(a.pos);
            region_of(x, y) == (rx, ry)
        })
        .count()
        + 1;
    let (balance, root) = match &game.world {
        Ok(w) => (
            game.balance().map_or("-".into(), |b| b.to_string()),
            hex::encode(&w.root().0[..6]),
        ),
        Err(e) => (format!("- ({e})"), "-".into()),
    };
    let frames = play.confirmed_frames();
    let ledger = match wallet {
        Some(w) => {
            let bond = match &play.bonds.mine {
                Some(b) => format!("bond {} locked", b.output.amount.0),
                None => "no session bond yet".into(),
            };
            format!("{} ({bond})", w.balance().0)
        }
        None => "none: this node runs no ledger (placeholder bonds)".into(),
    };
    let mut s = String::with_capacity(800);
    s.push_str(&format!("MESHWORK SANDBOX   you: {}\n\n", game.me.short()));
    s.push_str(&format!(
        "peers: {} linked, {} known\nlatency (mean RTT): {rtt}\n",
        peers.linked.len(),
        peers.known
    ));
    s.push_str(&format!(
        "balance: {balance} world tokens\n  (a block costs {BLOCK_PRICE})\nledger wallet: {ledger}\n"
    ));
    s.push_str(&format!(
        "region ({rx}, {ry}) of {REGIONS_X}x{REGIONS_Y}: {in_region} player(s) here\n"
    ));
    let duties = diagnostics
        .get(&meshwork::bevy::session::diagnostics::REFEREE_DUTIES)
        .and_then(|d| d.value())
        .unwrap_or(0.0);
    s.push_str(&format!(
        "referee duties: {duties:.0} checkpoints of other sessions\n"
    ));
    match play.session {
        Some(id) => s.push_str(&format!(
            "session {}: {} players, {} referees in the pool\n",
            hex::encode(&id.0[..4]),
            play.roster.len(),
            play.referees.len()
        )),
        None => s.push_str(&format!("session: none ({})\n", play.status)),
    }
    s.push_str(&format!(
        "finalised: frame {} ({} checkpoints{})\ncheats caught: {}, bonds forfeited: {}\n",
        game.height,
        play.finalised,
        play.finality_ms
            .map_or(String::new(), |m| format!(", last in {m} ms")),
        play.cheats_caught,
        play.bonds.forfeited
    ));
    s.push_str(&format!("world root: {root}... at frame {frames}\n"));
    if let Some(o) = &game.last_outcome {
        s.push_str(&format!("last action: {o}\n"));
    }
    s.push_str(&format!(
        "move: arrows / WASD   block kind: {} (keys 1-3)\nclick: place / remove   right click: remove\n",
        selected.0
    ));
    if !play.running() && !play.status.is_empty() {
        s.push_str(&format!("\n{}...\n", play.status));
    }
    text.0 = s;
}

/// In the browser, a summary of the game for the page and the browser test, as JSON in
/// `globalThis.meshworkState`: `{"peer", "links", "synced", "balance", "root", "blocks": [[x, y,
/// kind], ...], "final_blocks": [...], "height", "finalised", "cheats", "roster", "status",
/// "wallet" (ledger balance, -1 without a ledger), "bond" (our session bond, 0 if none),
/// "forfeited" (cheaters' bonds we forfeited), "region": [x, y] (the region we play in),
/// "duties" (checkpoints of other sessions we refereed)}`
/// (`blocks`: as of the last confirmed frame; `final_blocks`: as of the last finalised
/// checkpoint). Refreshed four times a second.
#[cfg(target_arch = "wasm32")]
fn expose_state(
    time: Res<Time<Real>>,
    game: Res<Game>,
    play: Res<crate::session::Play>,
    peers: Res<Peers>,
    wallet: Option<Res<meshwork::bevy::ledger::Wallet>>,
    diagnostics: Res<bevy::diagnostic::DiagnosticsStore>,
    mut last_ms: Local<u128>,
) {
    let now = time.elapsed().as_millis();
    if now.saturating_sub(*last_ms) < 250 {
        return;
    }
    *last_ms = now;
    let list = |w: &crate::world::SandboxWorld| {
        w.blocks()
            .iter()
            .map(|((x, y), b)| format!("[{x},{y},{}]", b.kind))
            .collect::<Vec<_>>()
            .join(",")
    };
    let (root, blocks) = match &game.world {
        Ok(w) => (hex::encode(w.root().0), list(w)),
        Err(_) => (String::new(), String::new()),
    };
    let final_blocks = game.finalised.as_ref().map(list).unwrap_or_default();
    let json = format!(
        r#"{{"peer":"{}","links":{},"synced":{},"balance":{},"root":"{root}","blocks":[{blocks}],"final_blocks":[{final_blocks}],"height":{},"finalised":{},"cheats":{},"roster":{},"status":"{}","wallet":{},"bond":{},"forfeited":{},"region":[{},{}],"duties":{}}}"#,
        game.me,
        peers.linked.len(),
        play.running(),
        game.balance().unwrap_or(0),
        game.height,
        play.finalised,
        play.cheats_caught,
        play.roster.len(),
        play.status.replace('"', "'"),
        wallet.map_or(-1, |w| i128::from(w.balance().0)),
        play.bonds.mine.as_ref().map_or(0, |b| b.output.amount.0),
        play.bonds.forfeited,
        game.region.0,
        game.region.1,
        diagnostics
            .get(&meshwork::bevy::session::diagnostics::REFEREE_DUTIES)
            .and_then(|d| d.value())
            .unwrap_or(0.0),
    );
    let _ = js_sys::Reflect::set(
        &js_sys::global(),
        &wasm_bindgen::JsValue::from_str("meshworkState"),
        &wasm_bindgen::JsValue::from_str(&json),
    );
}
