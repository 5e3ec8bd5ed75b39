//! The broker's nodes: one URL, or a cluster's several, each process trying them in an
//! order of its own so that connections spread over the cluster.
//!
//! Every new connection (the first, and each one after a loss) starts one node further
//! along than the last did, and skips nodes that do not answer: a process whose node died
//! moves to a live one, and a process's connections (publisher lanes, worker session) land
//! on different nodes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use lapin::uri::AMQPUri;

/// The nodes of one broker (a single node, or the members of a cluster), all reached with the
/// same credentials and vhost.
#[derive(Debug, Clone)]
pub struct Nodes {
    /// Shuffled once per process.
    urls: Arc<[AMQPUri]>,
    /// Where the next connection starts, shared by every clone.
    next: Arc<AtomicUsize>,
}

impl Nodes {
    /// Parses a comma-separated list of `amqp://` URLs (one is fine), naming a bad one
    /// without repeating its password; the order is shuffled.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut urls = text
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(parse_amqp_url)
            .collect::<Result<Vec<_>, _>>()?;
        if urls.is_empty() {
            return Err("no amqp:// URL given".to_owned());
        }
        fastrand::shuffle(&mut urls);
        Ok(Self::from(urls))
    }

    /// How many nodes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.urls.len()
    }

    /// Never: a list is refused when empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    /// The nodes in this process's order.
    #[must_use]
    pub fn urls(&self) -> &[AMQPUri] {
        &self.urls
    }

    /// Where the next connection starts: one node further along each time.
    #[must_use]
    pub fn next_start(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % self.urls.len().max(1)
    }

    /// The order the next connection tries the nodes in, as indices into
    /// [`urls`](Self::urls): every node once, from [`next_start`](Self::next_start) on.
    fn rotation(&self) -> impl Iterator<Item = usize> + use<> {
        let (start, count) = (self.next_start(), self.urls.len());
        (start..start + count).map(move |i| i % count)
    }

    /// Runs `attempt` (given each node's index in [`urls`](Self::urls)) on the
    /// nodes of the next [`rotation`](Self::rotation) until one answers, warning of each that
    /// does not while another is left to try; the last error if none answered (`None`: no
    /// node at all).
    pub(crate) async fn first_answering<T, E, F, Fut>(&self, mut attempt: F) -> Result<T, Option<E>>
    where
        E: std::fmt::Display,
        F: FnMut(usize) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let count = self.urls.len();
        let mut last = None;
        for (tried, index) in self.rotation().enumerate() {
            match attempt(index).await {
                Ok(answer) => return Ok(answer),
                Err(error) => {
                    if tried + 1 < count {
                        let node = host_port(&self.urls[index]);
                        tracing::warn!(%node, %error, "node unreachable; trying the next");
                    }
                    last = Some(error);
                }
            }
        }
        Err(last)
    }

    /// Hosts, ports and vhost, without credentials, for logs and errors.
    #[must_use]
    pub fn redacted(&self) -> String {
        let hosts: Vec<String> = self.urls.iter().map(host_port).collect();
        let vhost = self.urls.first().map_or("", |url| url.vhost.as_str());
        format!("{} (vhost `{vhost}`)", hosts.join(", "))
    }
}

impl From<Vec<AMQPUri>> for Nodes {
    /// The nodes in the order given (tests that need a known order).
    fn from(urls: Vec<AMQPUri>) -> Self {
        Self {
            urls: urls.into(),
            next: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// `host:port` of one node, for logs.
#[must_use]
pub fn host_port(url: &AMQPUri) -> String {
    format!("{}:{}", url.authority.host, url.authority.port)
}

/// Parses an `amqp://` URL, naming what is wrong without repeating its password.
pub fn parse_amqp_url(url: &str) -> Result<AMQPUri, String> {
    url.parse::<AMQPUri>().map_err(|e| {
        let shown = without_password(url);
        format!(
            "`{shown}` is not an amqp:// URL: {}",
            e.replace(url, &shown)
        )
    })
}

/// `url` with the password of its user info (`scheme://user:password@host`) replaced by
/// `***`, for messages and logs.
#[must_use]
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info
                .split_once(':')
                .map_or(user_info, |(user, _)| user);
            let hidden = if user.len() == user_info.len() {
                ""
            } else {
                ":***"
            };
            format!("{scheme}://{user}{hidden}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_list_of_urls_gives_every_node_once_in_each_rotation() {
        let nodes =
            Nodes::parse("amqp://u:p@a:5672/%2f, amqp://u:p@b:5673/%2f,amqp://u:p@c:5674/%2f")
                .unwrap();
        assert_eq!(nodes.len(), 3);
        let mut starts = Vec::new();
        for _ in 0..3 {
            let rotation: Vec<String> = nodes
                .rotation()
                .map(|index| host_port(&nodes.urls()[index]))
                .collect();
            let mut sorted = rotation.clone();
            sorted.sort();
            assert_eq!(sorted, ["a:5672", "b:5673", "c:5674"]);
            starts.push(rotation[0].clone());
        }
        starts.sort();
        assert_eq!(
            starts,
            ["a:5672", "b:5673", "c:5674"],
            "each connection starts one node on"
        );
    }

    #[test]
    fn a_bad_url_in_the_list_is_named_without_its_password() {
        let error = Nodes::parse("amqp://u:secret@a:5672/%2f,http://u:secret@b/").unwrap_err();
        assert!(error.contains("http://u:***@b/"), "{error}");
        assert!(!error.contains("secret"), "{error}");
        assert!(Nodes::parse(" , ").is_err());
    }
}
