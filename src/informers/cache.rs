//! Caches of converted objects, fed by watcher events.
//!
//! What kube's reflector store does (a map of the objects a watcher has
//! seen, replaced whole when a (re-)list completes, so the last state stays
//! until then), except that each object is converted to the snapshot's own
//! small types as it arrives. A cached pod then costs a few hundred bytes
//! instead of a k8s-openapi `Pod` (kilobytes of mostly empty `Option`
//! fields even when trimmed), the kube object is freed at once, and a sync
//! only clones what it needs. An object the converter rejects is cached as
//! the warning it gives, so every sync reports it, as before.
//!
//! Must not: keep the kube objects, translate, or hand out its lock.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use kube::runtime::watcher::Event;
use kube::ResourceExt;
use tokio::sync::watch;

use crate::convert::ConvertError;
use crate::model::Warning;

/// `namespace` (empty for cluster-scoped kinds) and `name`.
type Key = (String, String);

/// A converted object, or why it could not be.
type Entry<T> = Result<T, Warning>;

/// A converter of `convert`.
pub type Converter<K, T> = fn(&K) -> Result<T, ConvertError>;

/// Convert `obj`; a failure becomes the warning a sync reports.
pub fn entry<K, T>(obj: &K, convert: Converter<K, T>) -> Entry<T> {
    convert(obj).map_err(|e| Warning {
        object: e.object,
        field: e.field,
        message: format!("left out: {}", e.message),
    })
}

/// The reading side (cheap to clone: clones share the cache).
pub struct Cache<T> {
    items: Arc<Mutex<BTreeMap<Key, Entry<T>>>>,
    ready: watch::Receiver<bool>,
}

impl<T> Clone for Cache<T> {
    fn clone(&self) -> Self {
        Cache {
            items: self.items.clone(),
            ready: self.ready.clone(),
        }
    }
}

/// The writing side, owned by the watcher task.
pub struct Writer<K, T> {
    items: Arc<Mutex<BTreeMap<Key, Entry<T>>>>,
    /// Objects of a (re-)list in progress, swapped in when it completes.
    buffer: BTreeMap<Key, Entry<T>>,
    convert: Converter<K, T>,
    ready: watch::Sender<bool>,
}

/// An empty cache and its writer.
pub fn cache<K, T>(convert: Converter<K, T>) -> (Cache<T>, Writer<K, T>) {
    let items = Arc::new(Mutex::new(BTreeMap::new()));
    let (tx, rx) = watch::channel(false);
    (
        Cache {
            items: items.clone(),
            ready: rx,
        },
        Writer {
            items,
            buffer: BTreeMap::new(),
            convert,
            ready: tx,
        },
    )
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves a usable map.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<K: kube::Resource, T> Writer<K, T> {
    /// Apply one watcher event (the object is converted, then dropped).
    pub fn apply(&mut self, event: Event<K>) {
        match event {
            Event::Apply(obj) => {
                let (key, entry) = self.convert(&obj);
                lock(&self.items).insert(key, entry);
            }
            Event::Delete(obj) => {
                lock(&self.items).remove(&key_of(&obj));
            }
            Event::Init => self.buffer = BTreeMap::new(),
            Event::InitApply(obj) => {
                let (key, entry) = self.convert(&obj);
                self.buffer.insert(key, entry);
            }
            Event::InitDone => {
                let fresh = std::mem::take(&mut self.buffer);
                // The old map is dropped outside the lock.
                let old = std::mem::replace(&mut *lock(&self.items), fresh);
                drop(old);
                self.ready.send_replace(true);
            }
        }
    }

    fn convert(&self, obj: &K) -> (Key, Entry<T>) {
        (key_of(obj), entry(obj, self.convert))
    }
}

fn key_of<K: kube::Resource>(obj: &K) -> Key {
    (obj.namespace().unwrap_or_default(), obj.name_any())
}

/// The writer was dropped before the first list completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterDropped;

impl<T: Clone> Cache<T> {
    /// Resolves once the first complete list has been applied.
    pub async fn wait_until_ready(&self) -> Result<(), WriterDropped> {
        let mut ready = self.ready.clone();
        let result = ready.wait_for(|r| *r).await.map(|_| ());
        result.map_err(|_| WriterDropped)
    }

    /// Clones of the cached objects (in key order) and the warnings of the
    /// ones that could not be converted.
    pub fn read(&self) -> (Vec<T>, Vec<Warning>) {
        let items = lock(&self.items);
        let mut ok = Vec::with_capacity(items.len());
        let mut warnings = Vec::new();
        for entry in items.values() {
            match entry {
                Ok(v) => ok.push(v.clone()),
                Err(w) => warnings.push(w.clone()),
            }
        }
        (ok, warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert;
    use k8s_openapi::api::core::v1::Namespace;

    fn ns(name: &str, team: &str) -> Namespace {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {"team": team}}
        }))
        .unwrap()
    }

    fn names(c: &Cache<crate::snapshot::Namespace>) -> Vec<String> {
        let (ok, _) = c.read();
        ok.into_iter()
            .map(|n| format!("{}={}", n.name, n.labels["team"]))
            .collect()
    }

    #[tokio::test]
    async fn a_list_shows_only_when_complete_and_replaces_the_old_state() {
        let (c, mut w) = cache(convert::namespace);
        w.apply(Event::Init);
        w.apply(Event::InitApply(ns("a", "1")));
        assert!(names(&c).is_empty(), "half a list is not shown");
        w.apply(Event::InitDone);
        c.wait_until_ready().await.unwrap();
        assert_eq!(names(&c), ["a=1"]);
        // A re-list: the last state stays until it completes, then `a`
        // (deleted meanwhile) is gone.
        w.apply(Event::Init);
        w.apply(Event::InitApply(ns("b", "2")));
        assert_eq!(names(&c), ["a=1"]);
        w.apply(Event::InitDone);
        assert_eq!(names(&c), ["b=2"]);
    }

    #[tokio::test]
    async fn apply_and_delete_change_the_cache_at_once() {
        let (c, mut w) = cache(convert::namespace);
        w.apply(Event::Init);
        w.apply(Event::InitDone);
        w.apply(Event::Apply(ns("a", "1")));
        w.apply(Event::Apply(ns("b", "1")));
        w.apply(Event::Apply(ns("a", "2")));
        assert_eq!(names(&c), ["a=2", "b=1"]);
        w.apply(Event::Delete(ns("a", "2")));
        assert_eq!(names(&c), ["b=1"]);
    }

    #[tokio::test]
    async fn an_object_the_converter_rejects_is_reported_on_every_read() {
        let (c, mut w) = cache(convert::namespace);
        w.apply(Event::Init);
        w.apply(Event::InitApply(Namespace::default()));
        w.apply(Event::InitDone);
        for _ in 0..2 {
            let (ok, warnings) = c.read();
            assert!(ok.is_empty());
            assert_eq!(warnings.len(), 1);
            assert_eq!(warnings[0].field, "metadata.name");
            assert!(warnings[0].message.starts_with("left out: "));
        }
    }

    #[tokio::test]
    async fn waiting_fails_when_the_writer_goes_away_before_a_list() {
        let (c, w) = cache::<Namespace, _>(convert::namespace);
        drop(w);
        assert_eq!(c.wait_until_ready().await, Err(WriterDropped));
    }
}
