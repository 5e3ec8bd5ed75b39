//! The accounting at the end: the books against the system's records. Every figure becomes a
//! row of the table with what it must be; a row that is off is a miss.

use std::collections::HashSet;
use std::time::Duration;

use rabbitmq_jobs::JobId;

use crate::books::Books;
use crate::dlq::{self, DeadLetter};
use crate::faults::Outcome;
use crate::photo_checks::{self, PhotoFigures};
use crate::plants::Planted;
use crate::profile::Profile;
use crate::records;
use crate::stack::Stack;

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub figure: String,
    pub value: String,
    pub expected: String,
    pub ok: bool,
}

/// The table, the dead-letter rows, and every miss.
#[derive(Debug, Default)]
pub struct Accounts {
    pub rows: Vec<Row>,
    pub dlq_rows: Vec<String>,
    pub letters: Vec<DeadLetter>,
    pub misses: Vec<String>,
}

impl Accounts {
    fn row(&mut self, figure: &str, value: String, expected: &str, ok: bool) {
        if !ok {
            self.misses
                .push(format!("{figure}: {value} (expected {expected})"));
        }
        self.rows.push(Row {
            figure: figure.to_owned(),
            value,
            expected: expected.to_owned(),
            ok,
        });
    }
}

/// What the accounting reads.
pub struct Inputs<'a> {
    pub stack: &'a Stack,
    pub books: &'a Books,
    pub profile: &'a Profile,
    pub planted: &'a [Planted],
    pub outcomes: &'a [Outcome],
}

/// Accepted and handled `chaos_effect` jobs.
struct Effects {
    accepted: usize,
    handled: usize,
    doubles: usize,
}

pub async fn account(inputs: &Inputs<'_>) -> anyhow::Result<Accounts> {
    let mut acc = Accounts {
        letters: dlq::read_all(inputs.stack).await?,
        ..Accounts::default()
    };
    let effects = effects(inputs, &mut acc).await?;
    let photos = photo_checks::check(inputs.stack, &inputs.books.uploads()).await?;
    photo_rows(inputs.profile, &photos, &mut acc);
    totals(inputs, &effects, &photos, &mut acc);
    let accepted_images: HashSet<String> = inputs
        .books
        .uploads()
        .into_iter()
        .map(|u| u.image_id)
        .collect();
    let verdict = dlq::judge(&acc.letters, inputs.planted, &accepted_images);
    acc.row(
        "dead-letter queues",
        format!(
            "{} of {} plants as expected, {} not planted",
            verdict.plants_ok,
            inputs.planted.len(),
            verdict.unexpected
        ),
        "exactly the planted jobs, each with its reason",
        verdict.misses.is_empty(),
    );
    acc.misses.extend(verdict.misses);
    acc.dlq_rows = verdict.rows;
    redeliveries(inputs, &photos, &mut acc).await?;
    upload_answers(inputs.books, &mut acc);
    worker_exits(inputs, &mut acc);
    let fault_misses: Vec<String> = inputs
        .outcomes
        .iter()
        .flat_map(|o| o.misses.clone())
        .collect();
    acc.row(
        "faults injected and recovered",
        format!(
            "{} faults, {} misses",
            inputs.outcomes.len(),
            fault_misses.len()
        ),
        "every fault, each recovered",
        fault_misses.is_empty(),
    );
    acc.misses.extend(fault_misses);
    Ok(acc)
}

async fn effects(inputs: &Inputs<'_>, acc: &mut Accounts) -> anyhow::Result<Effects> {
    let accepted: Vec<JobId> = inputs.books.effects();
    let handled_ids = records::handled_ids(&inputs.stack.pool).await?;
    let lost: Vec<&JobId> = accepted
        .iter()
        .filter(|id| !handled_ids.contains(id))
        .collect();
    let accepted_set: HashSet<&JobId> = accepted.iter().collect();
    let plants: HashSet<&str> = inputs.planted.iter().map(|p| p.id.as_str()).collect();
    let stray = handled_ids
        .iter()
        .filter(|id| !accepted_set.contains(id) && !plants.contains(id.to_string().as_str()))
        .count();
    let doubles = records::double_effects(&inputs.stack.pool).await?;
    let examples: Vec<String> = lost
        .iter()
        .take(5)
        .map(|id| {
            let id = id.to_string();
            let letter = acc.letters.iter().find(|l| l.id == id);
            letter.map_or(format!("{id} (not in a DLQ)"), |l| {
                format!("{id} ({}: {})", l.queue, l.reason)
            })
        })
        .collect();
    acc.row(
        "chaos_effect jobs lost (accepted, never handled)",
        format!(
            "{}{}",
            lost.len(),
            if examples.is_empty() {
                String::new()
            } else {
                format!("; e.g. {}", examples.join("; "))
            }
        ),
        "0",
        lost.is_empty(),
    );
    acc.row(
        "chaos_effect handled, though their publish reported an error",
        stray.to_string(),
        "any (at least once)",
        true,
    );
    Ok(Effects {
        accepted: accepted.len(),
        handled: accepted.len() - lost.len(),
        doubles: doubles.len(),
    })
}

fn photo_rows(profile: &Profile, photos: &PhotoFigures, acc: &mut Accounts) {
    let n = photos.accepted;
    acc.row(
        "uploads lost (accepted, not ready)",
        format!(
            "{}{}",
            n - photos.ready,
            if photos.not_ready.is_empty() {
                String::new()
            } else {
                format!("; e.g. {}", photos.not_ready.join("; "))
            }
        ),
        "0",
        photos.ready == n,
    );
    let mails = &photos.mails;
    acc.row(
        "one mail per upload",
        format!(
            "{} of {n} with exactly one; {} without, {} with more; {} unreadable; {} about refused uploads",
            mails.exactly_one, mails.missing, mails.duplicated, mails.unreadable, mails.about_refused
        ),
        "exactly one for each accepted upload",
        mails.exactly_one == n && mails.unreadable == 0,
    );
    acc.row(
        "profiles pointing at their upload",
        format!("{} of {n}", photos.profiles_ok),
        "all",
        photos.profiles_ok == n,
    );
    acc.row(
        "uploads accepted (202)",
        n.to_string(),
        &format!("≥ {}", profile.uploads),
        n >= profile.uploads as usize,
    );
}

fn totals(inputs: &Inputs<'_>, effects: &Effects, photos: &PhotoFigures, acc: &mut Accounts) {
    let photo_jobs = 4 * photos.accepted;
    let accepted = effects.accepted + photo_jobs + inputs.planted.len();
    let min = inputs.profile.min_jobs;
    let totals = vec![
        Row {
            figure: "jobs accepted".into(),
            value: format!(
                "{accepted} ({} chaos_effect + 4 × {} uploads + {} plants)",
                effects.accepted,
                photos.accepted,
                inputs.planted.len()
            ),
            expected: format!("≥ {min}"),
            ok: accepted >= min,
        },
        Row {
            figure: "jobs handled".into(),
            value: format!(
                "{} ({} chaos_effect + {} upload jobs done)",
                effects.handled + photos.jobs_done,
                effects.handled,
                photos.jobs_done
            ),
            expected: format!("{} (all but the plants)", effects.accepted + photo_jobs),
            ok: effects.handled + photos.jobs_done == effects.accepted + photo_jobs,
        },
        Row {
            figure: "jobs lost".into(),
            value: (effects.accepted - effects.handled
                + photo_jobs.saturating_sub(photos.jobs_done))
            .to_string(),
            expected: "0".into(),
            ok: effects.handled == effects.accepted && photos.jobs_done >= photo_jobs,
        },
        Row {
            figure: "jobs with more than one effect".into(),
            value: format!(
                "{} ({} chaos_effect ledger ids, {} uploads mailed twice)",
                effects.doubles + photos.mails.duplicated,
                effects.doubles,
                photos.mails.duplicated
            ),
            expected: "0".into(),
            ok: effects.doubles + photos.mails.duplicated == 0,
        },
    ];
    for row in totals {
        acc.row(&row.figure, row.value, &row.expected, row.ok);
    }
}

async fn redeliveries(
    inputs: &Inputs<'_>,
    photos: &PhotoFigures,
    acc: &mut Accounts,
) -> anyhow::Result<()> {
    let (runs, distinct, flagged) = records::effect_runs(&inputs.stack.pool).await?;
    let broker = inputs
        .stack
        .management()
        .overview()
        .await
        .ok()
        .and_then(|o| o["message_stats"]["redeliver"].as_u64())
        .unwrap_or(0);
    acc.row(
        "redeliveries seen",
        format!(
            "{} extra chaos_effect runs ({flagged} flagged redelivered); {} photo job re-runs; \
             broker counter {broker} since its last restart",
            runs - distinct,
            photos.reruns
        ),
        "any",
        true,
    );
    Ok(())
}

/// How long a refused upload may take to be answered: the stack's `PUBLISH_TIMEOUT` (10 s,
/// the producer's default) plus the upload's own work before it publishes (reading the body,
/// waiting up to `DECODE_WAIT` for decode memory, checking the image, writing two fsynced
/// files and a row), which the chaos run's faults slow down too.
const REFUSAL_BOUND: Duration = Duration::from_secs(15);

fn upload_answers(books: &Books, acc: &mut Accounts) {
    let refused: Vec<_> = books
        .answers()
        .into_iter()
        .filter(|a| a.status == 503)
        .collect();
    let slowest = refused.iter().map(|a| a.latency).max().unwrap_or_default();
    let slow = refused.iter().filter(|a| a.latency > REFUSAL_BOUND).count();
    let unclear = refused.iter().filter(|a| !a.json_error).count();
    let accepted: Vec<_> = books
        .answers()
        .into_iter()
        .filter(|a| a.status == 202)
        .collect();
    let slowest_accepted = accepted.iter().map(|a| a.latency).max().unwrap_or_default();
    acc.row(
        "slowest upload answered 202",
        format!("{:.1} s", slowest_accepted.as_secs_f64()),
        "any",
        true,
    );
    acc.row(
        "uploads refused (503), retried by the client",
        format!(
            "{}; slowest answer {:.1} s; {slow} over {} s; {unclear} without a JSON error",
            refused.len(),
            slowest.as_secs_f64(),
            REFUSAL_BOUND.as_secs()
        ),
        &format!(
            "each within {} s with a JSON error",
            REFUSAL_BOUND.as_secs()
        ),
        slow == 0 && unclear == 0,
    );
    let problems = books.problems();
    let shown: Vec<String> = problems.iter().take(5).cloned().collect();
    acc.row(
        "other upload answers or errors",
        format!(
            "{}{}",
            problems.len(),
            if shown.is_empty() {
                String::new()
            } else {
                format!(": {}", shown.join("; "))
            }
        ),
        "0",
        problems.is_empty(),
    );
}

fn worker_exits(inputs: &Inputs<'_>, acc: &mut Accounts) {
    let exits = inputs.stack.workers.exits();
    let all: Vec<&String> = exits.iter().flat_map(|(_, e)| e).collect();
    let kills = all.iter().filter(|e| e.as_str() == "SIGKILL").count();
    let aborts = all.iter().filter(|e| e.as_str() == "SIGABRT").count();
    let other: Vec<&&String> = all
        .iter()
        .filter(|e| !matches!(e.as_str(), "SIGKILL" | "SIGABRT"))
        .collect();
    let wanted = inputs.profile.kills;
    acc.row(
        "worker processes restarted",
        format!(
            "{} ({kills} × SIGKILL by the harness, {aborts} × SIGABRT by the abort plant, {} other{})",
            all.len(),
            other.len(),
            if other.is_empty() { String::new() } else { format!(": {other:?}") }
        ),
        &format!("{wanted} SIGKILLs, aborts, nothing else"),
        kills == wanted && other.is_empty(),
    );
}
