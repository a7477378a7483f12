//! Two headless Bevy apps with `LedgerPlugin` and four in-process validators: a `SendPayment`
//! settles (`PaymentSettled`, balance down), the payee hears of it (`PaymentReceived`, balance
//! up), and a payment beyond the balance fails with a typed reason.

use std::collections::BTreeMap;
use std::time::Duration;

use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;
use meshwork::bevy::prelude::*;
use meshwork::proto::contract::Fuel;
use meshwork::proto::identity::Identity;
use meshwork::proto::ledger::{
    BondTerms, Epoch, Genesis, LedgerError, LedgerMsg, MemoryStore, Output, Validator,
};

#[derive(Resource, Default)]
struct Seen {
    settled: Vec<PaymentSettled>,
    received: Vec<PaymentReceived>,
    failed: Vec<PaymentFailed>,
}

fn record(
    mut seen: ResMut<Seen>,
    mut settled: MessageReader<PaymentSettled>,
    mut received: MessageReader<PaymentReceived>,
    mut failed: MessageReader<PaymentFailed>,
) {
    seen.settled.extend(settled.read().cloned());
    seen.received.extend(received.read().cloned());
    seen.failed.extend(failed.read().cloned());
}

fn app(genesis: &Genesis, seed: u8) -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_millis(
            20,
        )))
        .add_plugins(LedgerPlugin::new(
            LedgerConfig::new(genesis.committee.clone()).with_seed([seed; 32]),
        ))
        .init_resource::<Seen>()
        .add_systems(Update, record);
    let mut wallet = app.world_mut().resource_mut::<Wallet>();
    for (id, output) in genesis.created() {
        wallet.add_coin(id, output.clone(), None);
    }
    app
}

/// The validators and the wallets' inboxes: what carries ledger messages in this test.
struct Network {
    validators: BTreeMap<PeerId, Validator<MemoryStore>>,
}

impl Network {
    /// Take every app's outgoing ledger messages and deliver them (validators answer at once).
    fn deliver(&mut self, apps: &mut [App]) {
        let ids: Vec<PeerId> = apps
            .iter()
            .map(|a| a.world().resource::<Wallet>().peer_id())
            .collect();
        let mut mail: Vec<(PeerId, PeerId, LedgerMsg)> = Vec::new();
        for (a, from) in apps.iter_mut().zip(&ids) {
            let out: Vec<LedgerTransmit> = a
                .world_mut()
                .resource_mut::<Messages<LedgerTransmit>>()
                .drain()
                .collect();
            mail.extend(out.into_iter().map(|t| (*from, t.to, t.msg)));
        }
        while let Some((from, to, msg)) = mail.pop() {
            if let Some(v) = self.validators.get_mut(&to) {
                let _ = v.handle_message(from, msg);
                while let Some((reply_to, reply)) = v.poll_transmit() {
                    mail.push((to, reply_to, reply));
                }
            } else if let Some(i) = ids.iter().position(|p| *p == to) {
                apps[i]
                    .world_mut()
                    .write_message(LedgerReceived { from, msg });
            }
        }
    }
}

#[test]
fn a_payment_settles_between_two_apps() {
    let keys: Vec<Identity> = (0..4).map(|i| Identity::from_seed([40 + i; 32])).collect();
    let payer_key = Identity::from_seed([1; 32]);
    let terms = BondTerms::until(Epoch(3));
    let bonds: Vec<_> = keys
        .iter()
        .map(|k| (k.public_key(), Amount(1_000), Fuel(0)))
        .collect();
    let coins = vec![
        Output::plain(payer_key.public_key(), Amount(300)),
        Output::plain(payer_key.public_key(), Amount(200)),
    ];
    let genesis = Genesis::new(coins, &bonds, &terms, 4).expect("genesis");
    let mut net = Network {
        validators: keys
            .iter()
            .map(|k| {
                let v = Validator::new(k.clone(), &genesis, MemoryStore::new()).expect("validator");
                (k.peer_id(), v)
            })
            .collect(),
    };
    let mut apps = vec![app(&genesis, 1), app(&genesis, 2)];
    let payee = apps[1].world().resource::<Wallet>().public_key();
    assert_eq!(apps[0].world().resource::<Wallet>().balance(), Amount(500));
    assert_eq!(apps[1].world().resource::<Wallet>().balance(), Amount(0));

    apps[0].world_mut().write_message(SendPayment {
        to: payee,
        amount: Amount(120),
        fee: Amount(2),
    });
    apps[0].world_mut().write_message(SendPayment {
        to: payee,
        amount: Amount(10_000),
        fee: Amount(1),
    });
    for _ in 0..5 {
        for a in apps.iter_mut() {
            a.update();
        }
        net.deliver(&mut apps);
    }

    let payer = apps[0].world().resource::<Seen>();
    assert_eq!(payer.settled.len(), 1, "one payment settled");
    let s = &payer.settled[0];
    assert_eq!((s.to, s.amount, s.fee), (payee, Amount(120), Amount(2)));
    assert_eq!(payer.failed.len(), 1, "the overdraft failed");
    assert!(matches!(
        payer.failed[0].reason,
        PaymentError::Refused(LedgerError::InsufficientFunds { .. })
    ));
    assert_eq!(
        apps[0].world().resource::<Wallet>().balance(),
        Amount(500 - 122)
    );
    assert_eq!(apps[0].world().resource::<Wallet>().pending(), 0);

    let payee_seen = apps[1].world().resource::<Seen>();
    assert_eq!(payee_seen.received.len(), 1);
    assert_eq!(payee_seen.received[0].amount, Amount(120));
    assert_eq!(apps[1].world().resource::<Wallet>().balance(), Amount(120));
}
