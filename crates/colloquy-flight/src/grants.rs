//! The governance rules in force ([`colloquy::governance`]), replaced on a configuration reload. Each
//! session remembers the generation it was shaped under; a session of an older generation is shaped
//! again at its next call, so a reload reaches every session without a restart.

use std::sync::{Arc, PoisonError, RwLock};

use colloquy::governance::Governance;

#[derive(Default)]
pub struct GovernanceSlot {
    current: RwLock<(u64, Option<Arc<Governance>>)>,
}

impl GovernanceSlot {
    pub fn new(governance: Option<Governance>) -> Self {
        Self {
            current: RwLock::new((0, governance.map(Arc::new))),
        }
    }

    /// Puts new rules in force for every session's next call.
    pub fn replace(&self, governance: Option<Governance>) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        *current = (current.0 + 1, governance.map(Arc::new));
    }

    /// The generation and the rules in force (`None`: not governed).
    pub fn get(&self) -> (u64, Option<Arc<Governance>>) {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        (current.0, current.1.clone())
    }
}

impl std::fmt::Debug for GovernanceSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GovernanceSlot")
    }
}
