//! `meshwork`: the operator binary. By default it runs the embedded signalling server and the
//! web server for the sandbox's browser build (when `web/pkg` holds one; see `web.rs`); with
//! `--players N`, N headless sandbox bot players; with `--bots N`, a local mesh of N headless
//! overlay peers over real WebRTC links in this process, then prints what they did.
//! `meshwork validator` runs a ledger validator over a crash-safe store (see `validator.rs`).
//! With `--referees N`, N referee peers for the sandbox's sessions (`--referees-per-checkpoint`);
//! `--cheaters C` makes the first C bot players claim tampered roots. With referees the node
//! also runs the demo's ledger (the referees are its validators, a faucet pays newcomers, and
//! players post session bonds on it; `--no-ledger` leaves it out: placeholder bonds; see
//! `demo_ledger.rs`).
//!
//! ```text
//! cargo run -p meshwork-node --release -- --players 3 --seconds 0
//! cargo run -p meshwork-node --release -- --bots 8 --seconds 20
//! cargo run -p meshwork-node --release -- validator --data-dir val0 --genesis genesis.bin
//! ```

mod demo_ledger;
mod validator;
mod web;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use meshwork::proto::identity::{Identity, PeerId};
use meshwork::proto::overlay::{Overlay, OverlayConfig};
use meshwork::proto::referee::RefereePool;
use meshwork::transport::matchbox::{MatchboxConfig, MatchboxTransport};
use meshwork::transport::signalling::{SignallingConfig, SignallingServer};
use meshwork::transport::{Node, NodeEvent};

/// Meshwork operator node.
#[derive(Parser, Debug)]
#[command(name = "meshwork", version, about, args_override_self = true)]
struct Args {
    /// Do not run the embedded signalling server.
    #[arg(long)]
    no_signalling: bool,
    /// Address the signalling server binds to.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    signalling_bind: IpAddr,
    /// Port of the signalling server (0: any free port).
    #[arg(long, default_value_t = 3536)]
    signalling_port: u16,
    /// Existing peers a newcomer is introduced to.
    #[arg(long, default_value_t = 3)]
    introductions: usize,
    /// Signalling room URL the bots join when the embedded server is off.
    #[arg(long)]
    signalling_url: Option<String>,
    /// Room name on the embedded server.
    #[arg(long, default_value = "meshwork")]
    room: String,
    /// Headless peers to run in this process over real WebRTC links.
    #[arg(long, default_value_t = 0)]
    bots: usize,
    /// Headless sandbox bot players (they walk and build in the sandbox world).
    #[arg(long, default_value_t = 0)]
    players: usize,
    /// Of those, bots that claim tampered roots at checkpoints (the referees must catch them).
    #[arg(long, default_value_t = 0)]
    cheaters: usize,
    /// Referee peers for sandbox sessions (a session needs `--referees-per-checkpoint` of them
    /// outside its roster).
    #[arg(long, default_value_t = 0)]
    referees: usize,
    /// Referees drawn per checkpoint (at most 16, the default; the pool needs at least this many
    /// referees outside a session's roster).
    #[arg(long, default_value_t = 16)]
    referees_per_checkpoint: u8,
    /// Live-link cap per referee peer. (Below the overlay's default of 24, a small local mesh
    /// of referees was seen to lose links over time; kept at the default until that is fixed.)
    #[arg(long, default_value_t = 24)]
    referee_links_max: usize,
    /// Run the referees without the demo ledger (players then use placeholder session bonds).
    #[arg(long)]
    no_ledger: bool,
    /// Do not serve the browser build.
    #[arg(long)]
    no_web: bool,
    /// Port of the web server (0: any free port); it binds the signalling address.
    #[arg(long, default_value_t = 3580)]
    web_port: u16,
    /// Directory holding the browser build (default: `web/` here, else in the source tree).
    #[arg(long)]
    web_dir: Option<std::path::PathBuf>,
    /// Live-link cap per bot.
    #[arg(long, default_value_t = 24)]
    links_max: usize,
    /// How long to run, in seconds (0: until interrupted).
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Milliseconds between messages each bot sends to a random other bot.
    #[arg(long, default_value_t = 500)]
    message_interval_ms: u64,
    /// Run something else than the signalling server and bots.
    #[command(subcommand)]
    command: Option<Command>,
}

/// Roles other than the default (signalling server and bots).
#[derive(Subcommand, Debug)]
enum Command {
    /// Run a ledger validator over a crash-safe store, taking orders on a local TCP socket.
    Validator(validator::ValidatorArgs),
}

/// One headless peer and what it saw.
struct Bot {
    node: Node<MatchboxTransport>,
    joined: Vec<PeerId>,
    sent: u64,
    pending: BTreeMap<u64, Instant>,
    delivered_hops: Vec<u8>,
    rtts_ms: Vec<f64>,
    next_send_ms: u64,
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,meshwork=info,rtc=error,rtc_ice=error,rtc_dtls=error,rtc_sctp=error,matchbox_socket=error")
    });
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let args = Args::parse();
    if let Some(Command::Validator(v)) = &args.command {
        return match validator::run(v) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("validator: {e}");
                ExitCode::FAILURE
            }
        };
    }

    let server = if args.no_signalling {
        None
    } else {
        let config = SignallingConfig {
            bind: SocketAddr::new(args.signalling_bind, args.signalling_port),
            introductions: args.introductions,
            ..SignallingConfig::default()
        };
        match SignallingServer::start(config) {
            Ok(s) => {
                println!(
                    "signalling: ws://{}/<room> (introduces each newcomer to {} peers)",
                    s.addr(),
                    args.introductions
                );
                Some(s)
            }
            Err(e) => {
                eprintln!("signalling server: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    let url = match (&server, &args.signalling_url) {
        (_, Some(url)) => url.clone(),
        (Some(s), None) => s.room_url(&args.room),
        (None, None) if args.bots > 0 => {
            eprintln!(
                "--bots needs a signalling server: drop --no-signalling or give --signalling-url"
            );
            return ExitCode::FAILURE;
        }
        (None, None) => String::new(),
    };
    let ledger = if args.referees > 0 && !args.no_ledger {
        let seed = || {
            let mut s = [0u8; 32];
            meshwork::bevy::fill_random(&mut s);
            s
        };
        match demo_ledger::DemoLedger::new(args.referees, seed) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("ledger: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let _web = if args.no_web {
        None
    } else {
        start_web(&args, &url, ledger.as_ref())
    };
    if args.players > 0 || args.referees > 0 {
        run_players(&args, &url, ledger.as_ref());
    } else if args.bots == 0 {
        if args.seconds == 0 {
            println!("running until interrupted (--players N adds sandbox bot players)");
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        println!(
            "running for {} s (no bots; --players N adds sandbox bot players)",
            args.seconds
        );
        std::thread::sleep(Duration::from_secs(args.seconds));
    } else {
        run_bots(&args, &url);
    }
    if let Some(s) = server {
        let stats = s.stats();
        println!(
            "signalling: {} joined, {} introductions, {} signals relayed, {} requests rejected",
            stats.joined, stats.introductions, stats.relayed, stats.rejected
        );
        s.shutdown();
    }
    ExitCode::SUCCESS
}

/// Serves the browser build if there is one, printing the URL to open.
fn start_web(
    args: &Args,
    url: &str,
    ledger: Option<&demo_ledger::DemoLedger>,
) -> Option<web::WebServer> {
    let dir = args.web_dir.clone().unwrap_or_else(|| {
        let here = std::path::PathBuf::from("web");
        if web::has_build(&here) {
            here
        } else {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web")
        }
    });
    if !web::has_build(&dir) {
        println!(
            "web: no browser build in {} (scripts/build-web.sh makes one); not serving",
            dir.display()
        );
        return None;
    }
    // The ledger setup players need, next to the page (see `meshwork_sandbox::ledger`).
    let extra = ledger
        .map(|l| {
            vec![(
                meshwork_sandbox::ledger::SETUP_PATH
                    .trim_start_matches('/')
                    .to_string(),
                l.setup.encode(),
            )]
        })
        .unwrap_or_default();
    match web::WebServer::start_with(
        SocketAddr::new(args.signalling_bind, args.web_port),
        dir,
        extra,
    ) {
        Ok(w) => {
            let page = format!("http://{}/?signalling={url}", w.addr());
            println!();
            println!("  open {page}");
            println!("  (in Chromium, two tabs that also link to this node's native peers:");
            println!(
                "   chromium {} '{page}' '{page}')",
                CHROMIUM_FLAGS.join(" ")
            );
            println!();
            Some(w)
        }
        Err(e) => {
            eprintln!("web server: {e}");
            None
        }
    }
}

/// Chromium flags a page needs to link to this node's native peers: their WebRTC stack speaks
/// DTLS 1.2 without post-quantum key shares and cannot resolve mDNS host names (see
/// ARCHITECTURE.md, sandbox). Without them, browser tabs link to each other only.
const CHROMIUM_FLAGS: [&str; 2] = [
    "--disable-features=WebRtcHideLocalIpsWithMdns,PostQuantumKyber,WebRtcPqcForDtls",
    "--force-fieldtrials=WebRTC-ForceDtls13/Disabled/WebRTC-EnableDtlsPqc/Disabled/",
];

/// A referee peer of sandbox sessions: a headless node with a session service, and with the
/// demo ledger one of its validators.
struct RefereePeer {
    node: Node<MatchboxTransport>,
    next_announce_ms: u64,
    validator: Option<meshwork::proto::ledger::Validator<meshwork::persist::RedbStore>>,
    stats: demo_ledger::ValidatorStats,
}

/// How often a referee announces itself on the world topic.
const REFEREE_ANNOUNCE_MS: u64 = 2_000;

/// Runs `--referees` referee peers and `--players` sandbox bot players (headless Bevy apps, the
/// first `--cheaters` of them cheating) in this thread.
fn run_players(args: &Args, url: &str, ledger: Option<&demo_ledger::DemoLedger>) {
    let start = Instant::now();
    let now = || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut apps = Vec::new();
    let mut referees: Vec<RefereePeer> = Vec::new();
    let mut faucet: Option<demo_ledger::Faucet> = None;
    println!(
        "{} referees and {} sandbox bot players ({} cheating) joining {url}{}",
        args.referees,
        args.players,
        args.cheaters.min(args.players),
        if args.seconds == 0 {
            String::from(", running until interrupted")
        } else {
            format!(", running {} s", args.seconds)
        }
    );
    let mut next_report = Duration::from_secs(10);
    let mut pool_set = false;
    while args.seconds == 0 || start.elapsed() < Duration::from_secs(args.seconds) {
        let t = now();
        // Join one by one, so the signalling server introduces each to the ones before:
        // referees first (sessions wait for them), then the players.
        let joined = (referees.len() + usize::from(faucet.is_some()) + apps.len()) as u64;
        if t >= 300 * joined {
            if referees.len() < args.referees {
                let i = referees.len();
                let identity = match ledger {
                    Some(l) => l.referees[i].clone(),
                    None => {
                        let mut seed = [0u8; 32];
                        meshwork::bevy::fill_random(&mut seed);
                        Identity::from_seed(seed)
                    }
                };
                let validator = match ledger.map(|l| l.validator(i)).transpose() {
                    Ok(v) => v,
                    Err(e) => {
                        eprintln!("validator: {e}");
                        return;
                    }
                };
                match meshwork_sandbox::session::referee_service(identity.clone()) {
                    Ok(service) => {
                        let cfg = OverlayConfig {
                            links_max: args.referee_links_max,
                            ..OverlayConfig::default()
                        };
                        let seed = identity.seed();
                        let overlay = Overlay::new(identity, cfg, t, seed);
                        let transport = MatchboxTransport::new(MatchboxConfig::new(url));
                        referees.push(RefereePeer {
                            node: Node::new(overlay, transport).with_session(service),
                            next_announce_ms: t + 1_000,
                            validator,
                            stats: demo_ledger::ValidatorStats::default(),
                        });
                    }
                    Err(e) => {
                        eprintln!("referee: {e}");
                        return;
                    }
                }
            } else if let Some(l) = ledger.filter(|_| faucet.is_none()) {
                let overlay = Overlay::new(
                    l.faucet.clone(),
                    OverlayConfig::default(),
                    t,
                    l.faucet.seed(),
                );
                let transport = MatchboxTransport::new(MatchboxConfig::new(url));
                faucet = Some(demo_ledger::Faucet::new(
                    Node::new(overlay, transport),
                    l.faucet_wallet(),
                ));
            } else if apps.len() < args.players {
                let cheat = apps.len() < args.cheaters;
                apps.push(meshwork_sandbox::bot_app_with(
                    meshwork_sandbox::matchbox_config(url),
                    cheat,
                    ledger.map(|l| l.setup.clone()),
                    Some(meshwork_sandbox::bot_home(apps.len(), args.players)),
                ));
            }
        }
        if referees.len() == args.referees && !pool_set && args.referees > 0 {
            // Every referee judges with the same pool the players learn from the announcements
            // (a panel is drawn from the pool, so both sides must hold the same one).
            pool_set = true;
            let keys: Vec<_> = referees
                .iter()
                .map(|r| r.node.overlay.identity().public_key())
                .collect();
            for r in &mut referees {
                let pool = RefereePool::new(keys.clone())
                    .and_then(|p| p.with_per_checkpoint(usize::from(args.referees_per_checkpoint)));
                match (r.node.session.as_mut(), pool) {
                    (Some(s), Ok(pool)) => s.config_mut().pool = pool,
                    (_, Err(e)) => {
                        eprintln!("referee pool: {e}");
                        return;
                    }
                    (None, _) => {}
                }
            }
        }
        if let Some(f) = faucet.as_mut() {
            f.tick(t);
        }
        for r in &mut referees {
            for ev in r.node.tick(t) {
                if let (NodeEvent::Ledger { origin, msg }, Some(v)) = (ev, r.validator.as_mut()) {
                    demo_ledger::validate(&mut r.node, v, &mut r.stats, t, origin, msg);
                }
            }
            if t >= r.next_announce_ms && r.node.overlay.linked_peers().next().is_some() {
                r.next_announce_ms = t + REFEREE_ANNOUNCE_MS;
                let key = r.node.overlay.identity().public_key();
                r.node.overlay.publish(
                    t,
                    meshwork_sandbox::net::WORLD_TOPIC,
                    meshwork_sandbox::session::referee_announcement(
                        key,
                        args.referees_per_checkpoint,
                    ),
                );
            }
        }
        for app in &mut apps {
            app.update();
        }
        if start.elapsed() >= next_report {
            next_report += Duration::from_secs(10);
            report_players(&mut apps, &referees, faucet.as_ref());
        }
        std::thread::sleep(Duration::from_millis(8));
    }
    println!("final:");
    report_players(&mut apps, &referees, faucet.as_ref());
}

fn report_players(
    apps: &mut [meshwork_sandbox::BevyApp],
    referees: &[RefereePeer],
    faucet: Option<&demo_ledger::Faucet>,
) {
    if let Some(f) = faucet {
        let (votes, forfeits, refused) = referees.iter().fold((0, 0, 0), |(v, f, r), p| {
            (v + p.stats.votes, f + p.stats.forfeits, r + p.stats.refused)
        });
        println!(
            "ledger: {} validators voted for {votes} orders ({forfeits} forfeits of bonds), refused {refused}; the faucet paid {} grants",
            referees.len(),
            f.grants
        );
    }
    if !referees.is_empty() {
        let duties: u64 = referees
            .iter()
            .filter_map(|r| r.node.session.as_ref())
            .map(|s| s.stats().refereed)
            .sum();
        let links: usize = referees
            .iter()
            .map(|r| r.node.overlay.linked_peers().count())
            .sum();
        println!(
            "referees: {} peers, {:.1} links each, {duties} checkpoints attested or judged",
            referees.len(),
            links as f64 / referees.len() as f64
        );
    }
    for app in apps.iter_mut() {
        let game = app.world().resource::<meshwork_sandbox::Game>();
        let play = app.world().resource::<meshwork_sandbox::session::Play>();
        let peers = app.world().resource::<meshwork::bevy::Peers>();
        let refereed = app
            .world()
            .get_non_send::<meshwork::bevy::MeshworkNode>()
            .and_then(|n| n.node.session.as_ref())
            .map_or(0, |s| s.stats().refereed);
        println!(
            "player {} in region ({}, {}): {} links, {} in session, {} blocks, balance {}, finalised height {} ({} checkpoints, last {} ms), {} cheats caught, {} banned, {} avatar steps of others, {}, {} bonds forfeited, {} checkpoints of other sessions refereed{}",
            game.me.short(),
            game.region.0,
            game.region.1,
            peers.linked.len(),
            play.roster.len(),
            game.world.as_ref().map_or(0, |w| w.blocks().len()),
            game.balance().unwrap_or(0),
            game.height,
            play.finalised,
            play.finality_ms.map_or("-".into(), |m| m.to_string()),
            play.cheats_caught,
            play.banned.len(),
            play.avatar_steps,
            match (&play.bonds.setup, &play.bonds.mine) {
                (None, _) => "placeholder bond".to_string(),
                (Some(_), Some(b)) => format!("bond {}", b.output.amount.0),
                (Some(_), None) => "no bond".to_string(),
            },
            play.bonds.forfeited,
            refereed,
            if play.status.is_empty() {
                String::new()
            } else {
                format!(" ({})", play.status)
            },
        );
    }
}

fn run_bots(args: &Args, url: &str) {
    let start = Instant::now();
    let now = || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let cfg = OverlayConfig {
        links_max: args.links_max,
        ..OverlayConfig::default()
    };
    let mut rng = u64::from(std::process::id()) ^ 0x9e37_79b9_7f4a_7c15 ^ now();
    let mut next_rand = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut bots: Vec<Bot> = Vec::new();
    let stagger_ms = 300;
    let end_ms = args.seconds.saturating_mul(1000);
    println!(
        "{} bots joining {url}, running {} s",
        args.bots, args.seconds
    );
    while now() < end_ms {
        let t = now();
        if bots.len() < args.bots && t >= stagger_ms * bots.len() as u64 {
            let mut seed = [0u8; 32];
            for chunk in seed.chunks_mut(8) {
                chunk.copy_from_slice(&next_rand().to_le_bytes());
            }
            let overlay = Overlay::new(Identity::from_seed(seed), cfg.clone(), t, seed);
            let transport = MatchboxTransport::new(MatchboxConfig::new(url));
            bots.push(Bot {
                node: Node::new(overlay, transport),
                joined: Vec::new(),
                sent: 0,
                pending: BTreeMap::new(),
                delivered_hops: Vec::new(),
                rtts_ms: Vec::new(),
                next_send_ms: t + 2_000,
            });
        }
        let ids: Vec<PeerId> = bots.iter().map(|b| b.node.overlay.peer_id()).collect();
        for i in 0..bots.len() {
            let events = bots[i].node.tick(t);
            for ev in events {
                handle(&mut bots[i], t, ev);
            }
            let bot = &mut bots[i];
            if ids.len() > 1
                && t >= bot.next_send_ms
                && bot.node.overlay.linked_peers().next().is_some()
            {
                bot.next_send_ms = t + args.message_interval_ms;
                let pick = usize::try_from(next_rand() % (ids.len() as u64 - 1)).unwrap_or(0);
                let to = ids[if pick >= i { pick + 1 } else { pick }];
                bot.sent += 1;
                let seq = bot.sent;
                bot.pending.insert(seq, Instant::now());
                let mut payload = b"ping".to_vec();
                payload.extend_from_slice(&seq.to_le_bytes());
                bot.node.send(t, to, true, payload);
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    report(&bots);
}

fn handle(bot: &mut Bot, now_ms: u64, ev: NodeEvent) {
    match ev {
        NodeEvent::PeerJoined(p) => bot.joined.push(p),
        NodeEvent::Message {
            origin,
            payload,
            hops,
            ..
        } => match payload.split_at_checked(4) {
            Some((b"ping", seq)) => {
                bot.delivered_hops.push(hops);
                let mut pong = b"pong".to_vec();
                pong.extend_from_slice(seq);
                bot.node.send(now_ms, origin, true, pong);
            }
            Some((b"pong", seq)) => {
                let seq = seq.try_into().map(u64::from_le_bytes).unwrap_or(0);
                if let Some(t0) = bot.pending.remove(&seq) {
                    bot.rtts_ms.push(t0.elapsed().as_secs_f64() * 1e3);
                }
            }
            _ => {}
        },
        _ => {}
    }
}

fn quantile<T: Copy + PartialOrd>(v: &[T], q: f64) -> Option<T> {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(i).copied()
}

fn report(bots: &[Bot]) {
    println!();
    println!(
        "peer      joined  links  known  sent  answered  delivered  hops p50/max  rtt p50/p95 ms  mesh-links"
    );
    let (mut sent, mut answered, mut links) = (0u64, 0usize, 0usize);
    let mut hops_all = Vec::new();
    let mut rtts_all = Vec::new();
    for b in bots {
        let o = &b.node.overlay;
        let t = b.node.transport.stats();
        let hp = quantile(&b.delivered_hops, 0.5).map_or("-".into(), |h| h.to_string());
        let hm = b
            .delivered_hops
            .iter()
            .max()
            .map_or("-".into(), |h| h.to_string());
        let r50 = quantile(&b.rtts_ms, 0.5).map_or("-".into(), |r| format!("{r:.1}"));
        let r95 = quantile(&b.rtts_ms, 0.95).map_or("-".into(), |r| format!("{r:.1}"));
        println!(
            "{}  {:>6}  {:>5}  {:>5}  {:>4}  {:>8}  {:>9}  {:>5}/{:<6}  {:>6}/{:<7}  {:>10}",
            o.peer_id().short(),
            b.joined.len(),
            o.linked_peers().count(),
            o.known_peers(),
            b.sent,
            b.rtts_ms.len(),
            b.delivered_hops.len(),
            hp,
            hm,
            r50,
            r95,
            t.link_sockets
        );
        sent += b.sent;
        answered += b.rtts_ms.len();
        links += o.linked_peers().count();
        hops_all.extend_from_slice(&b.delivered_hops);
        rtts_all.extend_from_slice(&b.rtts_ms);
    }
    let n = bots.len().max(1);
    println!();
    println!(
        "{} peers, {:.1} links per peer on average; {} pings sent, {} answered ({:.1}%); hops p50 {} p95 {}; rtt p50 {:.1} ms p95 {:.1} ms",
        bots.len(),
        links as f64 / n as f64,
        sent,
        answered,
        if sent == 0 {
            0.0
        } else {
            answered as f64 * 100.0 / sent as f64
        },
        quantile(&hops_all, 0.5).unwrap_or(0),
        quantile(&hops_all, 0.95).unwrap_or(0),
        quantile(&rtts_all, 0.5).unwrap_or(0.0),
        quantile(&rtts_all, 0.95).unwrap_or(0.0),
    );
}
