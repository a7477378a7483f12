//! Contract state as Bevy components: a game marks a component type as contract state
//! ([`ContractState`]: a key prefix in a contract's key-value state, and how an entry decodes),
//! adds [`ContractStatePlugin`] for it, and publishes the contract state it shows into
//! [`ContractStates`] — the finalised state at each `CheckpointFinalised`, or the state at the
//! last confirmed frame. The plugin keeps one entity per matching entry, tagged with its
//! [`ContractKey`]: spawned when the entry appears, its component replaced when the value
//! changes, despawned when the entry goes. Entries that do not decode are skipped (and
//! counted in [`ContractStates::skipped`]), so a contract's other keys never become entities.
//!
//! Decisions: the mirror is one-way (contract → components): a game changes contract state
//! only through contract inputs, so a component edited locally is overwritten at the next
//! change. A publication whose root equals the last one is ignored, so publishing every frame
//! costs a root comparison.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

use ::bevy::prelude::*;

use crate::proto::contract::{ContractError, ContractHost, ContractId, StateEntry, StateRoot};

/// A component that mirrors entries of a contract's key-value state.
pub trait ContractState: Component + Clone + PartialEq + Sized {
    /// The key prefix of this component's entries.
    const PREFIX: &'static [u8];
    /// The component one entry holds (`key` is the whole key, prefix included); `None` skips
    /// the entry. Must not panic: the bytes are whatever the contract stored.
    fn from_entry(key: &[u8], value: &[u8]) -> Option<Self>;
}

/// The contract entry an entity mirrors.
#[derive(Component, Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContractKey {
    /// The contract.
    pub contract: ContractId,
    /// The entry's key.
    pub key: Vec<u8>,
}

#[derive(Debug, Clone)]
struct View {
    root: StateRoot,
    entries: Arc<BTreeMap<Vec<u8>, Vec<u8>>>,
    version: u64,
}

/// The contract states the game shows, by contract (see the module docs).
#[derive(Resource, Debug, Default)]
pub struct ContractStates {
    views: BTreeMap<ContractId, View>,
    skipped: u64,
}

impl ContractStates {
    /// Publishes `contract`'s state at `root`; returns whether it differs from the last one.
    pub fn set(
        &mut self,
        contract: ContractId,
        root: StateRoot,
        entries: impl IntoIterator<Item = StateEntry>,
    ) -> bool {
        if self.views.get(&contract).is_some_and(|v| v.root == root) {
            return false;
        }
        let version = self.views.get(&contract).map_or(1, |v| v.version + 1);
        self.views.insert(
            contract,
            View {
                root,
                entries: Arc::new(entries.into_iter().collect()),
                version,
            },
        );
        true
    }

    /// Publishes `contract`'s state as `host` holds it (exported only when its root changed).
    pub fn set_from_host(
        &mut self,
        host: &ContractHost,
        contract: ContractId,
    ) -> Result<bool, ContractError> {
        let root = host.contract_root(&contract)?;
        if self.views.get(&contract).is_some_and(|v| v.root == root) {
            return Ok(false);
        }
        Ok(self.set(contract, root, host.export_state(&contract)?))
    }

    /// The root last published for `contract`.
    pub fn root(&self, contract: &ContractId) -> Option<StateRoot> {
        self.views.get(contract).map(|v| v.root)
    }

    /// The value of `key` in `contract`'s published state.
    pub fn get(&self, contract: &ContractId, key: &[u8]) -> Option<&[u8]> {
        self.views
            .get(contract)
            .and_then(|v| v.entries.get(key))
            .map(Vec::as_slice)
    }

    /// Entries under a mirrored prefix that did not decode, so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

/// When contract state is mirrored into components: in `PostUpdate`, so a state published
/// during `Update` shows in the next frame's `Update`.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MirrorContractState;

/// Mirrors `T` from `contract`'s published state (see the module docs). One per component
/// type (a Bevy plugin is unique by type): a type mirrors one contract; give each contract
/// its own component type.
#[derive(Debug)]
pub struct ContractStatePlugin<T> {
    contract: ContractId,
    _component: PhantomData<fn() -> T>,
}

impl<T> ContractStatePlugin<T> {
    /// Mirrors `T` from `contract`.
    pub fn new(contract: ContractId) -> Self {
        Self {
            contract,
            _component: PhantomData,
        }
    }
}

/// The version of the state a mirror last applied.
#[derive(Resource)]
struct Mirrored<T> {
    contract: ContractId,
    version: u64,
    _component: PhantomData<fn() -> T>,
}

impl<T: ContractState> Plugin for ContractStatePlugin<T> {
    fn build(&self, app: &mut App) {
        app.init_resource::<ContractStates>()
            .insert_resource(Mirrored::<T> {
                contract: self.contract,
                version: 0,
                _component: PhantomData,
            })
            .add_systems(PostUpdate, mirror::<T>.in_set(MirrorContractState));
    }
}

fn mirror<T: ContractState>(
    mut commands: Commands,
    mut states: ResMut<ContractStates>,
    mut mirrored: ResMut<Mirrored<T>>,
    existing: Query<(Entity, &ContractKey, &T)>,
) {
    let Some(view) = states.views.get(&mirrored.contract) else {
        return;
    };
    if view.version == mirrored.version {
        return;
    }
    let entries = view.entries.clone();
    mirrored.version = view.version;
    let contract = mirrored.contract;
    let mut wanted: BTreeMap<&[u8], T> = BTreeMap::new();
    let mut skipped = 0;
    for (key, value) in entries.range(T::PREFIX.to_vec()..) {
        if !key.starts_with(T::PREFIX) {
            break;
        }
        match T::from_entry(key, value) {
            Some(c) => {
                wanted.insert(key.as_slice(), c);
            }
            None => skipped += 1,
        }
    }
    states.skipped += skipped;
    for (entity, k, current) in &existing {
        if k.contract != contract {
            continue;
        }
        match wanted.remove(k.key.as_slice()) {
            None => commands.entity(entity).despawn(),
            Some(c) if c != *current => {
                commands.entity(entity).insert(c);
            }
            Some(_) => {}
        }
    }
    for (key, c) in wanted {
        commands.spawn((
            ContractKey {
                contract,
                key: key.to_vec(),
            },
            c,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Component, Clone, Debug, PartialEq)]
    struct Tile(u8);

    impl ContractState for Tile {
        const PREFIX: &'static [u8] = b"T";
        fn from_entry(key: &[u8], value: &[u8]) -> Option<Self> {
            (key.len() == 2 && value.len() == 1).then(|| Tile(value[0]))
        }
    }

    fn tiles(app: &mut App) -> BTreeMap<Vec<u8>, u8> {
        let mut q = app.world_mut().query::<(&ContractKey, &Tile)>();
        q.iter(app.world())
            .map(|(k, t)| (k.key.clone(), t.0))
            .collect()
    }

    #[test]
    fn entities_follow_the_published_state() {
        let world = ContractId([1; 32]);
        let other = ContractId([2; 32]);
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .add_plugins(ContractStatePlugin::<Tile>::new(world));
        let entry = |k: &[u8], v: &[u8]| (k.to_vec(), v.to_vec());
        let publish = |app: &mut App, c: ContractId, root: u8, entries: Vec<StateEntry>| {
            app.world_mut()
                .resource_mut::<ContractStates>()
                .set(c, StateRoot([root; 32]), entries)
        };
        assert!(publish(
            &mut app,
            world,
            1,
            vec![
                entry(b"Ta", &[1]),
                entry(b"Tb", &[2]),
                entry(b"Tlong", &[3]), // not a tile: skipped
                entry(b"Tc", &[4, 4]), // malformed: skipped
                entry(b"U1", &[5]),    // another prefix
                entry(b"S", &[6]),     // sorts before the prefix
            ],
        ));
        app.update();
        assert_eq!(
            tiles(&mut app),
            BTreeMap::from([(b"Ta".to_vec(), 1), (b"Tb".to_vec(), 2)])
        );
        assert_eq!(app.world().resource::<ContractStates>().skipped(), 2);
        // The same root again is no change; another contract's state is not ours.
        assert!(!publish(&mut app, world, 1, Vec::new()));
        publish(&mut app, other, 9, vec![entry(b"Tz", &[9])]);
        app.update();
        assert_eq!(tiles(&mut app).len(), 2);
        // A value changes, an entry goes, one comes.
        let before: Vec<Entity> = {
            let mut q = app.world_mut().query_filtered::<Entity, With<Tile>>();
            q.iter(app.world()).collect()
        };
        publish(
            &mut app,
            world,
            2,
            vec![entry(b"Ta", &[7]), entry(b"Td", &[8])],
        );
        app.update();
        assert_eq!(
            tiles(&mut app),
            BTreeMap::from([(b"Ta".to_vec(), 7), (b"Td".to_vec(), 8)])
        );
        let mut q = app.world_mut().query::<(Entity, &ContractKey)>();
        let ta = q
            .iter(app.world())
            .find(|(_, k)| k.key == b"Ta")
            .map(|(e, _)| e);
        assert!(
            ta.is_some_and(|e| before.contains(&e)),
            "a changed entry keeps its entity"
        );
        assert_eq!(
            app.world().resource::<ContractStates>().get(&world, b"Td"),
            Some(&[8u8][..])
        );
    }
}
