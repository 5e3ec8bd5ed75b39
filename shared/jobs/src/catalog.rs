//! The job types a program publishes, by kind name: for tools that are given a kind and JSON
//! (a command line, an admin page) and must still publish typed jobs. Each domain offers its
//! own catalog; a program merges them, and builds its topology from the same kinds.

use std::collections::BTreeMap;

use crate::envelope::EncodedJob;
use crate::job::Job;
use crate::runtime::{DuplicateKind, merge_kinds};

/// Checks a JSON payload against a kind's type and encodes it in a fresh envelope.
type Encoder = fn(&str) -> Result<EncodedJob, serde_json::Error>;

/// Job types by kind name.
#[derive(Clone, Default)]
pub struct Catalog {
    kinds: BTreeMap<&'static str, Encoder>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.kinds.keys()).finish()
    }
}

/// Why JSON could not become a job.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// No type in the catalog has this kind.
    #[error("unknown job kind `{kind}`; known kinds: {known}")]
    UnknownKind {
        /// The kind asked for.
        kind: String,
        /// The catalog's kinds.
        known: String,
    },
    /// The payload does not fit the kind's type.
    #[error("the payload is not a valid `{kind}` job: {source}")]
    Payload {
        /// The kind.
        kind: &'static str,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
}

fn encode<J: Job>(payload: &str) -> Result<EncodedJob, serde_json::Error> {
    let job: J = serde_json::from_str(payload)?;
    EncodedJob::encode(&job)
}

impl Catalog {
    /// An empty catalog.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the job type `J` under its kind.
    #[must_use]
    pub fn with<J: Job>(mut self) -> Self {
        self.kinds.insert(J::KIND, encode::<J>);
        self
    }

    /// Adds `other`'s kinds; a kind both have is an error.
    pub fn merge(mut self, other: Catalog) -> Result<Self, DuplicateKind> {
        merge_kinds(&mut self.kinds, other.kinds)?;
        Ok(self)
    }

    /// The kinds, sorted.
    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.keys().copied()
    }

    /// `count` jobs of `kind` with `payload`, each in its own envelope (its own id), ready
    /// for [`Publisher::publish_encoded`](crate::Publisher::publish_encoded).
    pub fn encode(
        &self,
        kind: &str,
        payload: &str,
        count: usize,
    ) -> Result<Vec<EncodedJob>, CatalogError> {
        let (kind, encoder) =
            self.kinds
                .get_key_value(kind)
                .ok_or_else(|| CatalogError::UnknownKind {
                    kind: kind.to_owned(),
                    known: self.kinds().collect::<Vec<_>>().join(", "),
                })?;
        (0..count)
            .map(|_| encoder(payload))
            .collect::<Result<_, _>>()
            .map_err(|source| CatalogError::Payload { kind, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_jobs::{Ping, Pong};

    #[test]
    fn encodes_a_kinds_payload_into_envelopes_of_their_own()
    -> Result<(), Box<dyn std::error::Error>> {
        let catalog = Catalog::new().with::<Ping>().with::<Pong>();
        let jobs = catalog.encode("pong", r#"{"n": 7}"#, 2)?;
        assert_eq!(jobs.len(), 2);
        assert_ne!(jobs[0].id, jobs[1].id);
        assert!(jobs.iter().all(|job| job.kind == "pong"));
        let envelope: serde_json::Value = serde_json::from_slice(&jobs[0].body)?;
        assert_eq!(envelope["payload"]["n"], 7);
        Ok(())
    }

    #[test]
    fn refuses_an_unknown_kind_and_a_payload_of_the_wrong_shape() {
        let catalog = Catalog::new().with::<Ping>();
        let unknown = catalog.encode("pang", "{}", 1).map(drop);
        assert!(
            matches!(&unknown, Err(CatalogError::UnknownKind { known, .. }) if known == "ping"),
            "{unknown:?}"
        );
        let wrong = catalog.encode("ping", r#"{"n": "seven"}"#, 1).map(drop);
        assert!(
            matches!(wrong, Err(CatalogError::Payload { kind: "ping", .. })),
            "{wrong:?}"
        );
    }

    #[test]
    fn merging_catalogs_that_share_a_kind_is_an_error() {
        let merged = Catalog::new()
            .with::<Ping>()
            .merge(Catalog::new().with::<Pong>())
            .map(|catalog| catalog.kinds().collect::<Vec<_>>());
        assert_eq!(merged.ok(), Some(vec!["ping", "pong"]));
        let twice = Catalog::new()
            .with::<Ping>()
            .merge(Catalog::new().with::<Ping>());
        assert!(matches!(twice, Err(DuplicateKind { kind: "ping" })));
    }
}
