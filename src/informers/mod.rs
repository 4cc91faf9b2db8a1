//! Informers: kube-rs watchers for Pods (all namespaces), Namespaces and
//! NetworkPolicies, each feeding a cache of converted objects ([`cache`]),
//! ending in an owned `Snapshot`. Also the watched manifest files of daemon
//! mode ([`files`]).
//!
//! Objects are converted as they arrive and the kube objects dropped: what is
//! cached is only what the translator reads (no managedFields, annotations,
//! or spec/status fields the converter does not read). Lists are read in
//! pages of [`PAGE_SIZE`], so at most one page of kube objects is alive.
//!
//! Must not: translate, commit, or hand a `Store`/`Client` to anything
//! downstream; the reconcile loop only sees `Snapshot`s (via `Source`).

pub mod cache;
pub mod files;

use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Client;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::convert;
use crate::model::Warning;
use crate::reconcile::Source;
use crate::snapshot::{self, Snapshot};
use cache::{Cache, Converter};

/// Talking to the API server failed.
#[derive(Debug, thiserror::Error)]
pub enum InformerError {
    #[error("cannot read kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        source: kube::config::KubeconfigError,
    },
    #[error("no usable API server configuration (in-cluster or kubeconfig): {0}")]
    Infer(#[from] kube::config::InferConfigError),
    #[error("cannot build the API client: {0}")]
    Client(#[source] kube::Error),
    #[error("cannot list {kind}: {source}")]
    List {
        kind: &'static str,
        source: kube::Error,
    },
    #[error("the {0} watcher stopped before its store synced")]
    WriterDropped(&'static str),
}

/// A client from `--kubeconfig` (or $KUBECONFIG, which clap folds into it),
/// else the in-cluster configuration, else ~/.kube/config.
pub async fn client(config: &Config) -> Result<Client, InformerError> {
    let kube_config = match &config.kubeconfig {
        Some(path) => {
            let bad = |source| InformerError::Kubeconfig {
                path: path.clone(),
                source,
            };
            let file = Kubeconfig::read_from(path).map_err(bad)?;
            kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(bad)?
        }
        None => kube::Config::infer().await?,
    };
    Client::try_from(kube_config).map_err(InformerError::Client)
}

/// Objects per list request (the watchers' and `snapshot_once`'s).
pub const PAGE_SIZE: u32 = 500;

/// List Pods, Namespaces and NetworkPolicies once and build a snapshot
/// (`--dump-script` / `--once` without `--manifests`). Objects that cannot be
/// converted are logged and left out.
pub async fn snapshot_once(config: &Config) -> Result<Snapshot, InformerError> {
    let client = client(config).await?;
    let mut warnings = Vec::new();
    let mut snapshot = Snapshot {
        pods: list_all(
            Api::all(client.clone()),
            "pods",
            convert::pod,
            &mut warnings,
        )
        .await?,
        namespaces: list_all(
            Api::all(client.clone()),
            "namespaces",
            convert::namespace,
            &mut warnings,
        )
        .await?,
        policies: list_all(
            Api::all(client),
            "networkpolicies",
            convert::policy,
            &mut warnings,
        )
        .await?,
    };
    snapshot.normalize();
    for w in warnings {
        tracing::warn!(object = %w.object, field = %w.field, "{}", w.message);
    }
    Ok(snapshot)
}

/// Every object of a kind, page by page, converted as each page arrives.
async fn list_all<K, T>(
    api: Api<K>,
    kind: &'static str,
    convert: Converter<K, T>,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<T>, InformerError>
where
    K: Clone + DeserializeOwned + Debug,
{
    let mut out = Vec::new();
    let mut params = ListParams::default().limit(PAGE_SIZE);
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|source| InformerError::List { kind, source })?;
        for obj in &page.items {
            match cache::entry(obj, convert) {
                Ok(v) => out.push(v),
                Err(w) => warnings.push(w),
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}

/// Pause before a watcher is started afresh.
const RESTART_DELAY: std::time::Duration = std::time::Duration::from_millis(500);

/// The three caches (cheap to clone: clones share them).
#[derive(Clone)]
pub struct Stores {
    pods: Cache<snapshot::Pod>,
    namespaces: Cache<snapshot::Namespace>,
    policies: Cache<snapshot::Policy>,
}

impl Stores {
    /// Resolves once every store has seen its first complete list.
    pub async fn wait_until_ready(&self) -> Result<(), InformerError> {
        let drop = |kind| move |_: cache::WriterDropped| InformerError::WriterDropped(kind);
        self.pods.wait_until_ready().await.map_err(drop("pods"))?;
        self.namespaces
            .wait_until_ready()
            .await
            .map_err(drop("namespaces"))?;
        self.policies
            .wait_until_ready()
            .await
            .map_err(drop("networkpolicies"))
    }

    /// An owned snapshot of the caches now.
    pub fn snapshot(&self) -> (Snapshot, Vec<Warning>) {
        let (pods, mut warnings) = self.pods.read();
        let (namespaces, w) = self.namespaces.read();
        warnings.extend(w);
        let (policies, w) = self.policies.read();
        warnings.extend(w);
        let mut snapshot = Snapshot {
            pods,
            namespaces,
            policies,
        };
        snapshot.normalize();
        (snapshot, warnings)
    }
}

impl Source for Stores {
    fn snapshot(&mut self) -> Result<(Snapshot, Vec<Warning>), String> {
        Ok(Stores::snapshot(self))
    }
}

/// The running watchers: their stores and tasks (aborted on drop).
pub struct Informers {
    pub stores: Stores,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Informers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Start the three watchers. Every applied change (and every completed
/// (re-)list) notifies `trigger`. Watch errors are logged and retried with
/// kube's default backoff; a 410 Gone makes the watcher re-list, and the
/// store keeps its last state until the re-list completes.
pub fn start(client: Client, trigger: Arc<Notify>) -> Informers {
    let (pods, t1) = watch(
        Api::<Pod>::all(client.clone()),
        convert::pod,
        "pods",
        &trigger,
    );
    let (namespaces, t2) = watch(
        Api::<Namespace>::all(client.clone()),
        convert::namespace,
        "namespaces",
        &trigger,
    );
    let (policies, t3) = watch(
        Api::<NetworkPolicy>::all(client),
        convert::policy,
        "networkpolicies",
        &trigger,
    );
    Informers {
        stores: Stores {
            pods,
            namespaces,
            policies,
        },
        tasks: vec![t1, t2, t3],
    }
}

fn watch<K, T>(
    api: Api<K>,
    convert: Converter<K, T>,
    kind: &'static str,
    trigger: &Arc<Notify>,
) -> (Cache<T>, JoinHandle<()>)
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    T: Send + 'static,
{
    let (reader, mut writer) = cache::cache(convert);
    let trigger = trigger.clone();
    let task = tokio::spawn(async move {
        // A fresh watcher starts with a full list. kube's watcher re-lists
        // by itself on a 410 ERROR event, but on an HTTP 410 answer to the
        // watch request it would retry the expired resourceVersion forever:
        // then a new watcher is started (the store keeps its state until the
        // new list completes).
        loop {
            let config = watcher::Config::default().page_size(PAGE_SIZE);
            let mut events = watcher::watcher(api.clone(), config)
                .default_backoff()
                .boxed();
            while let Some(event) = events.next().await {
                match event {
                    Ok(event) => {
                        let notify = match &event {
                            Event::Apply(_) | Event::Delete(_) | Event::InitDone => true,
                            Event::Init => {
                                tracing::debug!(kind, "listing");
                                false
                            }
                            Event::InitApply(_) => false,
                        };
                        writer.apply(event);
                        if notify {
                            trigger.notify_one();
                        }
                    }
                    Err(watcher::Error::WatchStartFailed(kube::Error::Api(status)))
                        if status.code == 410 =>
                    {
                        tracing::warn!(kind, "watch expired (HTTP 410 Gone), re-listing");
                        break;
                    }
                    Err(e) => tracing::warn!(
                        kind,
                        "watch failed, keeping the last state and retrying with backoff: {e}"
                    ),
                }
            }
            // Never a hot loop, whatever the server answers.
            tokio::time::sleep(RESTART_DELAY).await;
        }
    });
    (reader, task)
}
