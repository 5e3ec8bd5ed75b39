//! Which handler runs each kind, with the kind's version range, retry policy and timeout.
//!
//! Handlers are registered with their job type, so decoding the payload is typed; the
//! registry erases the type so one worker can consume many kinds.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;

use super::handler::{Handler, JobContext, JobResult};
use super::observer::JobObserver;
use crate::job::Job;
use crate::retry::RetryPolicy;

/// Jobs of one kind run at once unless the worker's settings say otherwise.
const DEFAULT_CONCURRENCY: u16 = 10;

pub(crate) type JobFuture = Pin<Box<dyn Future<Output = JobResult> + Send + 'static>>;

/// Decodes a raw payload into the kind's type and starts its handler.
trait ErasedHandler: Send + Sync {
    fn start(&self, payload: &RawValue, ctx: JobContext) -> Result<JobFuture, serde_json::Error>;
}

struct Typed<J, H> {
    handler: Arc<H>,
    job: PhantomData<fn() -> J>,
}

impl<J: Job, H: Handler<J>> ErasedHandler for Typed<J, H> {
    fn start(&self, payload: &RawValue, ctx: JobContext) -> Result<JobFuture, serde_json::Error> {
        let job: J = serde_json::from_str(payload.get())?;
        let handler = Arc::clone(&self.handler);
        Ok(Box::pin(async move { handler.handle(job, ctx).await }))
    }
}

/// One kind's handler and settings.
#[derive(Clone)]
pub(crate) struct KindEntry {
    pub(crate) versions: (u32, u32),
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout: Duration,
    /// Jobs of the kind run at once, and so the prefetch of its consumer.
    pub(crate) concurrency: u16,
    handler: Arc<dyn ErasedHandler>,
    /// Who hears of the kind's jobs: its domain's observer, kept through a merge.
    pub(crate) observer: Option<Arc<dyn JobObserver>>,
}

impl KindEntry {
    pub(crate) fn start(
        &self,
        payload: &RawValue,
        ctx: JobContext,
    ) -> Result<JobFuture, serde_json::Error> {
        self.handler.start(payload, ctx)
    }
}

/// The kinds a worker handles, and who watches their jobs. Each domain builds its own and a
/// worker [merges](Registry::merge) them: every kind keeps its domain's observer.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: BTreeMap<&'static str, KindEntry>,
    /// The observer of kinds registered from now on.
    observer: Option<Arc<dyn JobObserver>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.kinds.keys()).finish()
    }
}

/// Two registries that both handle a kind: which handler runs it would be a guess.
#[derive(Debug, thiserror::Error)]
#[error("job kind `{kind}` is registered twice (by two domains' registries)")]
pub struct DuplicateKind {
    /// The kind both registries have.
    pub kind: &'static str,
}

/// Moves `from`'s kinds into `into`, refusing a kind `into` has: two domains' registries or
/// catalogs merged.
pub(crate) fn merge_kinds<V>(
    into: &mut BTreeMap<&'static str, V>,
    from: BTreeMap<&'static str, V>,
) -> Result<(), DuplicateKind> {
    if let Some(kind) = from.keys().find(|kind| into.contains_key(*kind)) {
        return Err(DuplicateKind { kind });
    }
    into.extend(from);
    Ok(())
}

/// A kind named in settings that no handler is registered for.
#[derive(Debug, thiserror::Error)]
#[error("no handler for job kind `{kind}` (known kinds: {known})")]
pub struct UnknownKind {
    /// The kind asked for.
    pub kind: String,
    /// The kinds the registry has.
    pub known: String,
}

impl Registry {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `handler` for jobs of type `J`, with `J`'s retry policy and timeout. A second
    /// registration of the same kind replaces the first.
    #[must_use]
    pub fn register<J: Job, H: Handler<J>>(mut self, handler: H) -> Self {
        let entry = KindEntry {
            versions: (J::MIN_VERSION, J::VERSION),
            retry: J::RETRY,
            timeout: J::TIMEOUT,
            concurrency: DEFAULT_CONCURRENCY,
            handler: Arc::new(Typed::<J, H> {
                handler: Arc::new(handler),
                job: PhantomData,
            }),
            observer: self.observer.clone(),
        };
        self.kinds.insert(J::KIND, entry);
        self
    }

    /// Reports the events of this registry's kinds, registered before or after, to
    /// `observer` (a second call replaces it). Kinds merged in keep their own.
    #[must_use]
    pub fn observe(mut self, observer: impl JobObserver) -> Self {
        let observer: Arc<dyn JobObserver> = Arc::new(observer);
        for entry in self.kinds.values_mut() {
            entry.observer = Some(Arc::clone(&observer));
        }
        self.observer = Some(observer);
        self
    }

    /// Adds `other`'s kinds, each with its handler, settings and observer: how one worker
    /// serves several domains. A kind both have is an error.
    pub fn merge(mut self, other: Registry) -> Result<Self, DuplicateKind> {
        merge_kinds(&mut self.kinds, other.kinds)?;
        Ok(self)
    }

    /// The registered kinds, sorted.
    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.keys().copied()
    }

    /// Keeps only `kinds` (a worker started with `--kinds`).
    pub fn retain(&mut self, kinds: &[String]) -> Result<(), UnknownKind> {
        for kind in kinds {
            self.entry_mut(kind)?;
        }
        self.kinds.retain(|kind, _| kinds.iter().any(|k| k == kind));
        Ok(())
    }

    /// Overrides a kind's retry policy.
    pub fn set_retry_policy(&mut self, kind: &str, policy: RetryPolicy) -> Result<(), UnknownKind> {
        self.entry_mut(kind)?.retry = policy;
        Ok(())
    }

    /// Overrides a kind's timeout.
    pub fn set_timeout(&mut self, kind: &str, timeout: Duration) -> Result<(), UnknownKind> {
        self.entry_mut(kind)?.timeout = timeout;
        Ok(())
    }

    /// Overrides how many jobs of a kind run at once (at least one).
    pub fn set_concurrency(&mut self, kind: &str, concurrency: u16) -> Result<(), UnknownKind> {
        self.entry_mut(kind)?.concurrency = concurrency.max(1);
        Ok(())
    }

    pub(crate) fn get(&self, kind: &str) -> Option<&KindEntry> {
        self.kinds.get(kind)
    }

    pub(crate) fn entries(&self) -> impl Iterator<Item = (&'static str, &KindEntry)> {
        self.kinds.iter().map(|(kind, entry)| (*kind, entry))
    }

    fn entry_mut(&mut self, kind: &str) -> Result<&mut KindEntry, UnknownKind> {
        let known = self.kinds.keys().copied().collect::<Vec<_>>().join(", ");
        self.kinds.get_mut(kind).ok_or_else(|| UnknownKind {
            kind: kind.to_owned(),
            known,
        })
    }
}
