//! Secrets stay secret: a bad URL's error and `--help` never show a password.

use clap::{CommandFactory, Parser};

const PASSWORD: &str = "s3cret-Pa55";

/// URLs that do not parse, each with a password in it.
fn bad_amqp_urls() -> Vec<String> {
    vec![
        format!("amqp://app:{PASSWORD}@broker:99999/%2f"),
        format!("amqp://app:{PASSWORD}@broker:5672/%2f?heartbeat=often"),
        format!("http://app:{PASSWORD}@broker:5672/"),
    ]
}

#[test]
fn a_bad_amqp_url_is_refused_by_both_binaries_without_showing_its_password() {
    for url in bad_amqp_urls() {
        // Everything else given, so that the URL is what is refused.
        let database = ["--database-url", "postgres://app@db/photos"];
        let errors = [
            producer::Cli::try_parse_from(
                ["producer", "--amqp-url", &url, "serve"]
                    .iter()
                    .chain(&database),
            )
            .map(drop),
            worker::Cli::try_parse_from(["worker", "--amqp-url", &url].iter().chain(&database))
                .map(drop),
        ];
        for error in errors {
            let message = error.expect_err("a bad URL is refused").to_string();
            assert!(!message.contains(PASSWORD), "{message}");
            assert!(message.contains("app:***@broker"), "{message}");
            assert!(message.contains("not an amqp:// URL"), "{message}");
        }
    }
}

#[test]
fn help_never_shows_the_value_of_a_variable_that_holds_a_password() {
    let secret_variables = ["AMQP_URL", "DATABASE_URL", "DATABASE_ADMIN_URL", "SMTP_URL"];
    for command in [producer::Cli::command(), worker::Cli::command()] {
        let mut arguments: Vec<_> = command.get_arguments().cloned().collect();
        for sub in command.get_subcommands() {
            arguments.extend(sub.get_arguments().cloned());
        }
        for argument in arguments {
            let Some(variable) = argument.get_env() else {
                continue;
            };
            let variable = variable.to_string_lossy();
            if secret_variables.contains(&variable.as_ref()) || variable.contains("PASSWORD") {
                assert!(
                    argument.is_hide_env_values_set(),
                    "`{}`'s --help shows ${variable}",
                    command.get_name()
                );
            }
        }
    }
}
