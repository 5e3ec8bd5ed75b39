//! Command-line parsing that names the environment variable behind a bad value.
//!
//! Every setting is a flag with an environment variable; clap's own error names only the
//! flag, which misleads when the bad value came from the environment (compose, Kubernetes).

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser};

/// Parses the process's arguments and environment, or exits with a message naming the flag
/// and, when one is behind it, the environment variable.
#[must_use]
pub fn parse_args<T: Parser>() -> T {
    match T::try_parse() {
        Ok(parsed) => parsed,
        Err(error) => {
            if let Some(note) = env_note::<T>(&error) {
                // The note goes out before clap's message, which exits the process.
                eprintln!("{note}");
            }
            error.exit()
        }
    }
}

/// "the value came from WORKER_CONCURRENCY", when the failing flag has an environment variable.
fn env_note<T: CommandFactory>(error: &clap::Error) -> Option<String> {
    if !matches!(
        error.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    let Some(ContextValue::String(invalid)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let long = invalid.strip_prefix("--")?.split([' ', '=']).next()?;
    let command = T::command();
    let env = command
        .get_arguments()
        .find(|arg| arg.get_long() == Some(long))?
        .get_env()?
        .to_string_lossy()
        .into_owned();
    let from_env = std::env::var_os(&env).is_some();
    Some(if from_env {
        format!("error in environment variable {env} (flag --{long}):")
    } else {
        format!("error in flag --{long} (environment variable {env}):")
    })
}
