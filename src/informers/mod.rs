//! Informers: kube-rs watchers and reflector stores for Pods (all
//! namespaces), Namespaces and NetworkPolicies, ending in an owned `Snapshot`.
//! Also the watched manifest files of daemon mode ([`files`]).
//!
//! Objects are trimmed before they are cached (see [`trim`]): no
//! managedFields, annotations, owner references, or spec/status fields the
//! converter does not read.
//!
//! Must not: translate, commit, or hand a `Store`/`Client` to anything
//! downstream; the reconcile loop only sees `Snapshot`s (via `Source`).

pub mod files;
pub mod trim;

use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Client;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::convert::{self, ConvertError};
use crate::model::Warning;
use crate::reconcile::Source;
use crate::snapshot::Snapshot;

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

/// List Pods, Namespaces and NetworkPolicies once and build a snapshot
/// (`--dump-script` / `--once` without `--manifests`). Objects that cannot be
/// converted are logged and left out.
pub async fn snapshot_once(config: &Config) -> Result<Snapshot, InformerError> {
    let client = client(config).await?;
    let pods = list_all(Api::<Pod>::all(client.clone()), "pods").await?;
    let namespaces = list_all(Api::<Namespace>::all(client.clone()), "namespaces").await?;
    let policies = list_all(Api::<NetworkPolicy>::all(client), "networkpolicies").await?;
    let (snapshot, warnings) = build_snapshot(&pods, &namespaces, &policies);
    for w in warnings {
        tracing::warn!(object = %w.object, field = %w.field, "{}", w.message);
    }
    Ok(snapshot)
}

/// Every object of a kind, page by page.
async fn list_all<K>(api: Api<K>, kind: &'static str) -> Result<Vec<Arc<K>>, InformerError>
where
    K: Clone + DeserializeOwned + Debug,
{
    let mut out = Vec::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|source| InformerError::List { kind, source })?;
        out.extend(page.items.into_iter().map(Arc::new));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}

/// Convert cached objects; conversion failures become warnings (the API
/// server validated these objects, so a failure means a converter gap).
pub fn build_snapshot(
    pods: &[Arc<Pod>],
    namespaces: &[Arc<Namespace>],
    policies: &[Arc<NetworkPolicy>],
) -> (Snapshot, Vec<Warning>) {
    let mut warnings = Vec::new();
    let mut snapshot = Snapshot {
        pods: convert_all(pods, convert::pod, &mut warnings),
        namespaces: convert_all(namespaces, convert::namespace, &mut warnings),
        policies: convert_all(policies, convert::policy, &mut warnings),
    };
    snapshot.normalize();
    (snapshot, warnings)
}

fn convert_all<K, T>(
    objects: &[Arc<K>],
    convert: fn(&K) -> Result<T, ConvertError>,
    warnings: &mut Vec<Warning>,
) -> Vec<T> {
    let mut out = Vec::with_capacity(objects.len());
    for o in objects {
        match convert(o) {
            Ok(v) => out.push(v),
            Err(e) => warnings.push(Warning {
                object: e.object,
                field: e.field,
                message: format!("left out: {}", e.message),
            }),
        }
    }
    out
}

/// Pause before a watcher is started afresh.
const RESTART_DELAY: std::time::Duration = std::time::Duration::from_millis(500);

/// The three reflector stores (cheap to clone: they share the caches).
#[derive(Clone)]
pub struct Stores {
    pods: Store<Pod>,
    namespaces: Store<Namespace>,
    policies: Store<NetworkPolicy>,
}

impl Stores {
    /// Resolves once every store has seen its first complete list.
    pub async fn wait_until_ready(&self) -> Result<(), InformerError> {
        let drop = |kind| move |_| InformerError::WriterDropped(kind);
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
        build_snapshot(
            &self.pods.state(),
            &self.namespaces.state(),
            &self.policies.state(),
        )
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
    let (pods, t1) = watch(Api::<Pod>::all(client.clone()), trim::pod, "pods", &trigger);
    let (namespaces, t2) = watch(
        Api::<Namespace>::all(client.clone()),
        trim::namespace,
        "namespaces",
        &trigger,
    );
    let (policies, t3) = watch(
        Api::<NetworkPolicy>::all(client),
        trim::policy,
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

fn watch<K>(
    api: Api<K>,
    trim: fn(&mut K),
    kind: &'static str,
    trigger: &Arc<Notify>,
) -> (Store<K>, JoinHandle<()>)
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, mut writer) = reflector::store();
    let trigger = trigger.clone();
    let task = tokio::spawn(async move {
        // A fresh watcher starts with a full list. kube's watcher re-lists
        // by itself on a 410 ERROR event, but on an HTTP 410 answer to the
        // watch request it would retry the expired resourceVersion forever:
        // then a new watcher is started (the store keeps its state until the
        // new list completes).
        loop {
            let mut events = watcher::watcher(api.clone(), watcher::Config::default())
                .default_backoff()
                .modify(trim)
                .boxed();
            while let Some(event) = events.next().await {
                match event {
                    Ok(event) => {
                        writer.apply_watcher_event(&event);
                        match event {
                            Event::Apply(_) | Event::Delete(_) | Event::InitDone => {
                                trigger.notify_one()
                            }
                            Event::Init => tracing::debug!(kind, "listing"),
                            Event::InitApply(_) => {}
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
