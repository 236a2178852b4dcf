//! [`Ledger`]: [`apply`] run over a delivery or a group of them, in memory.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::{apply, ContactState, Effects, MessageState, Prior, StateKeys};
use crate::counters::Deltas;
use crate::event::Event;

/// The recording of a delivery, or of a group of them, in memory: the state its
/// events touch, loaded once and threaded through them in order, and the counter
/// deltas of all of them merged per cell. Pure, like [`apply`]: the store loads
/// what [`Ledger::missing`] names, [`Ledger::apply`]s each new event, then writes
/// the changed state and the deltas in one go.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Loaded or changed contacts; `None`: known to be absent from the store.
    /// Shared with the store's readers while unwritten (no copy per commit).
    contacts: HashMap<String, Option<Arc<ContactState>>>,
    messages: HashMap<String, Option<MessageState>>,
    changed_contacts: BTreeSet<String>,
    changed_messages: BTreeSet<String>,
    deltas: Deltas,
}

impl Ledger {
    /// The keys of the state `event` reads that the ledger has not been given yet.
    pub fn missing(&self, event: &Event) -> StateKeys {
        let keys = StateKeys::of(event);
        StateKeys {
            contact: keys.contact.filter(|k| !self.contacts.contains_key(k)),
            message: keys.message.filter(|k| !self.messages.contains_key(k)),
        }
    }

    /// Gives the ledger a contact's stored state (`None`: there is none).
    pub fn load_contact(&mut self, wa_id: String, state: Option<ContactState>) {
        self.contacts.entry(wa_id).or_insert(state.map(Arc::new));
    }

    /// Gives the ledger an outbound message's stored state (`None`: there is none).
    pub fn load_message(&mut self, id: String, state: Option<MessageState>) {
        self.messages.entry(id).or_insert(state);
    }

    /// Records a new event (never a duplicate) on top of what the ledger holds;
    /// state it was not given counts as absent.
    pub fn apply(&mut self, event: &Event) {
        let (keys, effects) = self.effects(event);
        self.take(keys, effects);
    }

    /// What recording `event` would change, the ledger left as it is: to decide
    /// whether it still fits a write before [`Ledger::take`]ing it.
    pub fn effects(&self, event: &Event) -> (StateKeys, Effects) {
        let keys = StateKeys::of(event);
        let prior = Prior {
            contact: keys
                .contact
                .as_ref()
                .and_then(|k| self.contacts.get(k)?.as_deref()),
            message: keys
                .message
                .as_ref()
                .and_then(|k| self.messages.get(k)?.as_ref()),
        };
        let effects = apply(event, prior);
        (keys, effects)
    }

    /// Records what [`Ledger::effects`] computed on this very ledger.
    pub fn take(&mut self, keys: StateKeys, effects: Effects) {
        debug_assert_eq!(keys.contact.is_some(), effects.contact.is_some());
        debug_assert_eq!(keys.message.is_some(), effects.message.is_some());
        self.deltas.merge(effects.deltas);
        if let (Some(key), Some(state)) = (keys.contact, effects.contact) {
            self.changed_contacts.insert(key.clone());
            self.contacts.insert(key, Some(Arc::new(state)));
        }
        if let (Some(key), Some(state)) = (keys.message, effects.message) {
            self.changed_messages.insert(key.clone());
            self.messages.insert(key, Some(state));
        }
    }

    /// How many state items a write would hold beyond the ledger's if these keys
    /// changed too.
    pub fn new_state_items(&self, keys: &StateKeys) -> usize {
        let contact = keys
            .contact
            .as_ref()
            .is_some_and(|k| !self.changed_contacts.contains(k));
        let message = keys
            .message
            .as_ref()
            .is_some_and(|k| !self.changed_messages.contains(k));
        usize::from(contact) + usize::from(message)
    }

    /// A contact's state as the ledger holds it (`None` when not loaded or absent).
    pub fn contact(&self, wa_id: &str) -> Option<&Arc<ContactState>> {
        self.contacts.get(wa_id)?.as_ref()
    }

    /// The contacts whose state changed, to be written.
    pub fn changed_contacts(&self) -> impl Iterator<Item = &ContactState> {
        self.changed_contacts
            .iter()
            .filter_map(|k| self.contacts.get(k)?.as_deref())
    }

    /// The outbound messages whose state changed, by id, to be written.
    pub fn changed_messages(&self) -> impl Iterator<Item = (&str, &MessageState)> {
        self.changed_messages
            .iter()
            .filter_map(|k| Some((k.as_str(), self.messages.get(k)?.as_ref()?)))
    }

    /// The counter deltas of every event applied, merged per cell.
    pub fn deltas(&self) -> &Deltas {
        &self.deltas
    }

    /// Hands over the deltas gathered so far, to be written while the state
    /// stays (a writer that keeps state across commits writes deltas with each).
    pub fn take_deltas(&mut self) -> Deltas {
        std::mem::take(&mut self.deltas)
    }

    /// Whether some contact or message state changed since the ledger was made.
    pub fn has_changed_state(&self) -> bool {
        !self.changed_contacts.is_empty() || !self.changed_messages.is_empty()
    }
}
