//! `queue`: what the relay holds, and acting on it — like Postfix's `mailq`, `postqueue -f`,
//! `postsuper -d`. Safe while the relay runs; the relay picks up changes within seconds.
//!
//! Everything shown came from a client or a server: control characters are printed escaped, so
//! a message cannot drive the terminal that lists it.

use std::time::Duration;

use super::args::{DeadCommand, QueueArgs, QueueCommand};
use super::exit::{Code, Failure};
use crate::clock::Timestamp;
use crate::config::{Overrides, RelayOverrides};
use crate::queue::{DeadEntry, Entry, Inspection, Lookup, Paused, Summary};

pub(crate) async fn run(args: &QueueArgs) -> Result<(), Failure> {
    let overrides = RelayOverrides {
        config: Overrides {
            config: args.config.clone(),
            ..Overrides::default()
        },
        queue_dir: args.queue_dir.clone(),
        ..RelayOverrides::default()
    };
    if let Some(QueueCommand::Migrate { to }) = &args.command {
        return migrate(&overrides, to.as_deref()).await;
    }
    let location = crate::config::queue_location(&overrides, &crate::config::process_env)?;
    let mut q = Inspection::open(&location).await?;
    let now = Timestamp::now();
    match args.command.as_ref().unwrap_or(&QueueCommand::List) {
        QueueCommand::List => {
            let entries = q.list(now).await?;
            let paused = q.paused().await?;
            if args.json {
                // Each message says whether its account is paused, and why.
                let with_pause: Vec<serde_json::Value> = entries
                    .iter()
                    .map(|e| {
                        let mut value = serde_json::to_value(e).expect("queue entries serialise");
                        value["account_paused"] =
                            serde_json::to_value(paused.iter().find(|p| p.account == e.message.account))
                                .unwrap_or_default();
                        value
                    })
                    .collect();
                print_json(&with_pause);
            } else {
                print!("{}{}", render_paused(&paused, now), render_list(&entries, now));
            }
        }
        QueueCommand::Show { id, content } => {
            let id = found(q.resolve(id).await?)?;
            let (entry, bytes) = q.show(&id, now).await?.ok_or_else(|| gone(&id))?;
            if args.json {
                print_json(&entry);
            } else {
                print!("{}", render_entry(&entry, now));
                print_message(&bytes, *content);
            }
        }
        QueueCommand::Retry { id: Some(id), .. } => {
            let id = found(q.resolve(id).await?)?;
            found(q.retry(&id, now).await?)?;
            println!("{id}: due now");
        }
        QueueCommand::Retry { id: None, .. } => {
            let n = q.retry_all(now).await?;
            println!("{n} messages due now");
        }
        QueueCommand::Delete { id } => {
            let id = found(q.resolve(id).await?)?;
            found(q.delete(&id, now).await?)?;
            println!("{id}: deleted");
        }
        QueueCommand::Dead { command } => {
            dead(&mut q, command.as_ref().unwrap_or(&DeadCommand::List), args.json, now).await?;
        }
        QueueCommand::Migrate { .. } => unreachable!("`run` moves the queue before opening it here"),
    }
    Ok(())
}

async fn dead(q: &mut Inspection, command: &DeadCommand, json: bool, now: Timestamp) -> Result<(), Failure> {
    match command {
        DeadCommand::List => {
            let entries = q.dead().await?;
            if json {
                print_json(&entries);
            } else {
                print!("{}", render_dead_list(&entries, now));
            }
        }
        DeadCommand::Show { id, content } => {
            let found = q.dead_show(id).await?;
            if found.is_empty() {
                return Err(Failure::new(Code::Data, format!("no dead letter `{id}`")));
            }
            if json {
                print_json(&found.iter().map(|(e, _)| e).collect::<Vec<_>>());
                return Ok(());
            }
            for (entry, bytes) in &found {
                print!("{}", render_dead(entry, now));
                print_message(bytes, *content);
            }
        }
        DeadCommand::Retry { id, .. } => {
            let n = q.dead_retry(id.as_deref(), now).await?;
            if n == 0 && id.is_some() {
                return Err(Failure::new(
                    Code::Data,
                    format!("no dead letter `{}`", id.as_deref().unwrap_or_default()),
                ));
            }
            println!("{n} dead letters back in the queue, due now");
        }
        DeadCommand::Purge { older_than } => {
            let before = older_than.map(|age| now - age);
            let n = q.dead_purge(before).await?;
            println!("{n} dead letters deleted");
        }
    }
    Ok(())
}

/// `queue migrate`: the SQLite queue into PostgreSQL.
async fn migrate(overrides: &RelayOverrides, to: Option<&str>) -> Result<(), Failure> {
    let (dir, target, password) = crate::config::queue_migration(overrides, to, &crate::config::process_env)?;
    let moved = crate::queue::migrate(&dir, &target, password.as_ref()).await?;
    println!(
        "{} waiting messages and {} dead letters moved from {} to {target}{}",
        moved.queued,
        moved.dead,
        dir.display(),
        match moved.already_there {
            0 => String::new(),
            n => format!(" ({n} were there already, from an earlier run)"),
        }
    );
    if let Some(aside) = &moved.set_aside {
        println!("the SQLite queue is kept, unused, as {}", aside.display());
    }
    Ok(())
}

fn found<T>(lookup: Result<T, Lookup>) -> Result<T, Failure> {
    lookup.map_err(|e| {
        let code = if matches!(e, Lookup::Busy(_)) {
            Code::TempFail
        } else {
            Code::Data
        };
        Failure::new(code, e.to_string())
    })
}

fn gone(id: &str) -> Failure {
    Failure::new(Code::Data, format!("message {id} left the queue meanwhile"))
}

fn print_json<T: serde::Serialize + ?Sized>(value: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("queue entries serialise")
    );
}

/// The headers, or the whole message; line breaks and tabs kept, other control characters
/// escaped.
fn print_message(bytes: &[u8], whole: bool) {
    let text = String::from_utf8_lossy(bytes);
    let shown = if whole {
        &text[..]
    } else {
        text.split("\r\n\r\n").next().unwrap_or_default()
    };
    let lines: Vec<String> = shown.split("\r\n").map(|line| escaped(line, true)).collect();
    println!("\n{}", lines.join("\n").trim_end());
}

/// `text` with control characters (and, unless `tabs`, tabs) as `\u{1b}`-style escapes.
fn escaped(text: &str, tabs: bool) -> String {
    text.chars()
        .map(|c| match c {
            '\t' if tabs => "\t".to_owned(),
            c if c.is_control() => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// One line of what a client or server wrote.
fn shown(text: &str) -> String {
    escaped(text, false)
}

fn render_paused(paused: &[Paused], now: Timestamp) -> String {
    let mut out = String::new();
    for p in paused {
        let next = if p.until <= now {
            "next try when a message is due".to_owned()
        } else {
            format!("next try in {}", span(now.until(p.until)))
        };
        out.push_str(&format!(
            "Account {} is paused since {} UTC ({next}); its messages wait:\n    {}\n",
            shown(&p.account),
            when(p.since),
            shorten(&shown(&p.reason), 200)
        ));
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// `2026-11-23 20:05:15` (UTC).
fn when(t: Timestamp) -> String {
    t.to_datetime()
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        ))
        .unwrap_or_default()
}

/// `4m 10s`, `2h 3m`, `5d 1h`.
fn span(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

fn render_list(entries: &[Entry], now: Timestamp) -> String {
    if entries.is_empty() {
        return "The queue is empty.\n".to_owned();
    }
    let mut out = format!(
        "{:<32}  {:>9}  {:<19}  {:>8}  NEXT ATTEMPT\n",
        "QUEUE ID", "SIZE", "ARRIVED (UTC)", "ATTEMPTS"
    );
    for e in entries {
        let next = if e.leased {
            "delivering now".to_owned()
        } else if e.next_attempt <= now {
            "due".to_owned()
        } else {
            format!("in {}", span(now.until(e.next_attempt)))
        };
        out.push_str(&format!(
            "{:<32}  {:>9}  {:<19}  {:>8}  {next}\n",
            e.message.id,
            e.message.size,
            when(e.message.received),
            e.message.attempts
        ));
        out.push_str(&format!(
            "    {} → {}\n",
            shown(&e.message.sender),
            shown(&e.message.recipients.join(", "))
        ));
        if let Some(reply) = &e.last_reply {
            out.push_str(&format!("    ({})\n", shorten(&shown(reply), 100)));
        }
    }
    let size: i64 = entries.iter().map(|e| e.message.size).sum();
    let oldest = entries.iter().map(|e| e.message.received).min().unwrap_or(now);
    out.push_str(&format!(
        "-- {} message{}, {size} bytes, oldest {} old\n",
        entries.len(),
        if entries.len() == 1 { "" } else { "s" },
        span(now.since(oldest))
    ));
    out
}

fn render_entry(e: &Entry, now: Timestamp) -> String {
    let next = if e.leased {
        "being delivered now".to_owned()
    } else if e.next_attempt <= now {
        "due now".to_owned()
    } else {
        format!("{} (in {})", when(e.next_attempt), span(now.until(e.next_attempt)))
    };
    format!(
        "{}Arrived:      {} UTC ({} ago)\nSize:         {} bytes\nAttempts:     {}\nNext attempt: {next}\nLast reply:   {}\n",
        render_summary(&e.message),
        when(e.message.received),
        span(now.since(e.message.received)),
        e.message.size,
        e.message.attempts,
        shown(e.last_reply.as_deref().unwrap_or("-")),
    )
}

/// The lines `queue show` and `queue dead show` both begin with.
fn render_summary(m: &Summary) -> String {
    format!(
        "Queue id:     {}\nAccount:      {}\nFrom:         {}\nTo:           {}\nSubject:      {}\nMessage-ID:   {}\nClient:       {}\n",
        m.id,
        shown(&m.account),
        shown(&m.sender),
        shown(&m.recipients.join(", ")),
        shown(m.subject.as_deref().unwrap_or("-")),
        shown(m.message_id.as_deref().unwrap_or("-")),
        shown(&m.client),
    )
}

fn render_dead_list(entries: &[DeadEntry], now: Timestamp) -> String {
    if entries.is_empty() {
        return "The dead-letter area is empty.\n".to_owned();
    }
    let mut out = String::new();
    for e in entries {
        out.push_str(&format!(
            "{}  given up {} ago after {} attempts\n    {} → {}\n    {}\n",
            e.message.id,
            span(now.since(e.failed)),
            e.message.attempts,
            shown(&e.message.sender),
            shown(&e.message.recipients.join(", ")),
            shorten(&shown(&e.reply), 100)
        ));
    }
    out.push_str(&format!(
        "-- {} dead letters; `m365-mailer queue dead show ID` for the cause and fix\n",
        entries.len()
    ));
    out
}

fn render_dead(e: &DeadEntry, now: Timestamp) -> String {
    format!(
        "{}Arrived:      {} UTC\nGiven up:     {} UTC ({} ago) after {} attempts\nReply:        {}\n\n{}\n",
        render_summary(&e.message),
        when(e.message.received),
        when(e.failed),
        span(now.since(e.failed)),
        e.message.attempts,
        shown(&e.reply),
        e.diagnosis
            .trim_end()
            .lines()
            .map(|l| escaped(l, true))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max - 1).collect();
    short.push('…');
    short
}
