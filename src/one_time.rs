//! Short-lived values used once: guichet remembers a value it handed out (a logout's `state`)
//! and accepts it back once. With a shared store the value lives there, so any replica may take
//! it, and the one `DEL` that succeeds decides who; when the store fails, in this process's
//! memory (bounded in count and time).

use std::sync::Arc;
use std::time::Duration;

use crate::shared::{Entry, SharedStore};

/// Values remembered for `ttl`, each taken at most once.
pub struct OneTimeStore {
    entry: Entry,
    memory: moka::future::Cache<String, ()>,
    shared: Option<Arc<SharedStore>>,
    ttl: Duration,
}

impl OneTimeStore {
    /// At most `capacity` values in memory, each for `ttl`; `entry` names them in the store.
    pub fn new(entry: Entry, ttl: Duration, capacity: u64) -> Self {
        OneTimeStore {
            entry,
            memory: moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            shared: None,
            ttl,
        }
    }

    /// Keeps the values in a store shared with other replicas.
    pub fn with_shared(mut self, shared: Arc<SharedStore>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// Remembers a value (in the shared store when there is one and it answers).
    pub async fn put(&self, value: String) {
        if let Some(shared) = &self.shared {
            if shared.put(self.entry, &value, "1", self.ttl).await.is_ok() {
                return;
            }
        }
        self.memory.insert(value, ()).await;
    }

    /// Whether the value was remembered; it is forgotten at once.
    pub async fn take(&self, value: &str) -> bool {
        // `get` honours the time to live (an expired value may linger until evicted); of two
        // concurrent takes, one `remove` only returns it.
        if self.memory.get(value).await.is_some() && self.memory.remove(value).await.is_some() {
            return true;
        }
        match &self.shared {
            Some(shared) => shared.delete(self.entry, value).await.unwrap_or(false),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_value_is_taken_once_and_forgotten_after_its_time() {
        let store = OneTimeStore::new(Entry::Logout, Duration::from_millis(200), 10);
        store.put("a".into()).await;
        store.put("b".into()).await;
        assert!(store.take("a").await);
        assert!(!store.take("a").await, "used once");
        assert!(!store.take("never").await);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!store.take("b").await, "expired");
    }
}
