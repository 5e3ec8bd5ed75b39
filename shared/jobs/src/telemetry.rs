//! Logs for the binaries: on stderr, filtered by `RUST_LOG` (default `info`); readable lines,
//! or with `LOG_FORMAT=json` one JSON object per line (for a log shipper), each carrying the
//! spans it happened in (a job's `kind` and `id`).

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

/// `LOG_FORMAT`: `json`, or anything else (unset, `text`) for readable lines; an unknown
/// value is reported once logging is up.
fn log_format(value: Option<&str>) -> (LogFormat, Option<String>) {
    match value.map(str::trim) {
        Some(json) if json.eq_ignore_ascii_case("json") => (LogFormat::Json, None),
        None | Some("" | "text") => (LogFormat::Text, None),
        Some(other) => (LogFormat::Text, Some(other.to_owned())),
    }
}

/// Installs the global subscriber; a second call is a no-op (tests start many apps).
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let requested = std::env::var("LOG_FORMAT").ok();
    let (format, unknown) = log_format(requested.as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    if let (Ok(()), Some(unknown)) = (installed, unknown) {
        tracing::warn!(
            log_format = unknown,
            "LOG_FORMAT is `json` or `text`; writing text"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_is_json_only_when_asked_and_an_unknown_value_is_named() {
        assert_eq!(log_format(Some("json")).0, LogFormat::Json);
        assert_eq!(log_format(Some(" JSON ")).0, LogFormat::Json);
        assert_eq!(log_format(None), (LogFormat::Text, None));
        assert_eq!(log_format(Some("text")), (LogFormat::Text, None));
        assert_eq!(
            log_format(Some("xml")),
            (LogFormat::Text, Some("xml".to_owned()))
        );
    }
}
