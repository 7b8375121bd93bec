//! The status page as one HTML document: no external assets, inline CSS for light and dark and
//! small screens, a refresh every 15 seconds without JavaScript. maud escapes every value it
//! interpolates, so a subject, an address or a reply cannot become markup.

use std::time::Duration;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::{AccountView, Counts, Paged, Snapshot};
use crate::clock::Timestamp;

const STYLE: &str = "
:root{color-scheme:light dark;--fg:#1b1f24;--bg:#fff;--muted:#57606a;--line:#d0d7de;--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--head:#f6f8fa}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--muted:#8d96a0;--line:#30363d;--ok:#3fb950;--warn:#d29922;--bad:#f85149;--head:#161b22}}
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;color:var(--fg);background:var(--bg);margin:0;padding:1rem;max-width:90rem}
h1{font-size:1.3rem;margin:0 0 .2rem}h2{font-size:1.05rem;margin:1.6rem 0 .5rem}
.muted{color:var(--muted)}.ok{color:var(--ok)}.warn{color:var(--warn)}.bad{color:var(--bad)}
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:.3rem .5rem;border-bottom:1px solid var(--line)}
th{background:var(--head);font-weight:600;white-space:nowrap}
td.wrap{max-width:32rem;overflow-wrap:anywhere}code{font-size:.9em}
form{margin:.5rem 0}input[type=search]{padding:.3rem;min-width:16rem;max-width:100%}
nav a{margin-right:.6rem}form.inline{display:inline;margin:0}td form.inline+form.inline{margin-left:.3rem}
.notice{padding:.5rem .8rem;border:1px solid var(--line);background:var(--head)}
.charts{display:flex;flex-wrap:wrap;gap:1rem}figure{margin:0;flex:1 1 22rem;min-width:0}
svg{width:100%;height:8rem;display:block}polyline{fill:none;stroke-width:2;vector-effect:non-scaling-stroke}
line.axis{stroke:var(--line)}.axis-labels{display:flex;justify-content:space-between;font-size:.85em;color:var(--muted)}
.s-accepted{color:#0969da;stroke:#0969da}.s-delivered{color:var(--ok);stroke:var(--ok)}
.s-deferred{color:var(--warn);stroke:var(--warn)}.s-dead{color:var(--bad);stroke:var(--bad)}
";

/// The whole page.
pub(crate) fn render(s: &Snapshot) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta http-equiv="refresh" content="15";
                title { "m365-mailer relay on " (s.hostname) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "m365-mailer relay on " (s.hostname) }
                p.muted {
                    "As of " (s.now) " · refreshes every 15 s · "
                    @if let Some(csrf) = &s.csrf {
                        form.inline method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Log out" }
                        }
                    } @else if s.can_log_in {
                        a href="/login" { "Log in to retry and delete" }
                    } @else {
                        "read only (admin_token_file enables retry and delete)"
                    }
                }
                @if let Some(notice) = s.notice { p.notice role="status" { (notice) } }
                (accounts(s))
                (activity(s))
                (inbound(s))
                (queue(s))
                (dead(s))
            }
        }
    }
    .into_string()
}

fn accounts(s: &Snapshot) -> Markup {
    html! {
        h2 { "Accounts" }
        div.scroll { table {
            tr {
                th { "Account" } th { "Service" } th { "Mailbox" } th { "State" } th { "Token" }
                th { "Credential" } th { "This minute" } th { "This hour" } th { "Recipients today" }
                th { "Connections" } th { "Last reply" }
            }
            @for a in &s.accounts {
                tr {
                    td { (a.name) }
                    td { (a.service.title()) @if a.transport == crate::account::Transport::Graph { " (Graph)" } }
                    td.wrap { (a.mailbox) }
                    td.wrap { (state(a, s)) }
                    td { (token(a, s.now)) }
                    td { (credential(a, s.now)) }
                    td { (used(a.usage.minute as u64, a.limits.messages)) }
                    td { @match a.usage.hour { Some(n) => (used(n as u64, a.limits.hourly)), None => span.muted { "no limit" } } }
                    td { (used(a.usage.recipients, a.limits.recipients)) }
                    td { (a.connections) }
                    td.wrap {
                        @if let Some(last) = &a.last_reply {
                            (last.reply) " " span.muted { "(" (ago(s.now, last.at)) ")" }
                            @if !last.diagnosis.is_empty() { br; span.muted { (last.diagnosis) } }
                        }
                    }
                }
            }
        } }
        @if !s.paused.is_empty() {
            h2 { "Paused accounts" }
            div.scroll { table {
                tr { th { "Account" } th { "Since" } th { "Next try" } th { "Why" } }
                @for p in &s.paused {
                    tr {
                        td { (p.account) } td { (ago(s.now, p.since)) } td { (until(s.now, p.until)) }
                        td.wrap { (p.reason) }
                    }
                }
            } }
        }
    }
}

/// The charts and the last deliveries.
fn activity(s: &Snapshot) -> Markup {
    html! {
        h2 { "Activity" }
        p.legend {
            span.s-accepted { "■ accepted" } " " span.s-delivered { "■ delivered" } " "
            span.s-deferred { "■ deferred" } " " span.s-dead { "■ dead-lettered" }
        }
        div.charts {
            (chart(&s.minutes, "per minute, the last hour", "60 min ago"))
            (chart(&s.hours, "per hour, the last day", "24 h ago"))
        }
        h2 { "Last deliveries" }
        @if s.deliveries.is_empty() {
            p.muted { "None since the relay started." }
        } @else {
            div.scroll { table {
                tr { th { "When" } th { "Queue id" } th { "Account" } th { "Recipients" } th { "Latency" } th { "Reply" } }
                @for d in &s.deliveries {
                    tr {
                        td { (ago(s.now, d.at)) } td { code { (d.queue_id) } } td { (d.account) }
                        td { (d.recipients) } td { (latency(d.latency)) } td.wrap { (d.reply) }
                    }
                }
            } }
        }
    }
}

/// One chart: a line per kind of event over the buckets, drawn on the server as SVG.
fn chart(buckets: &[Counts], title: &str, start: &str) -> Markup {
    const W: f64 = 600.0;
    const H: f64 = 120.0;
    let max = buckets
        .iter()
        .map(|c| c.accepted.max(c.delivered).max(c.deferred).max(c.dead))
        .max()
        .unwrap_or(0)
        .max(1);
    let step = W / (buckets.len().max(2) - 1) as f64;
    let line = |value: fn(&Counts) -> u32| -> String {
        buckets
            .iter()
            .enumerate()
            .map(|(i, c)| {
                format!(
                    "{:.1},{:.1}",
                    i as f64 * step,
                    H - f64::from(value(c)) * H / f64::from(max)
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let total: u64 = buckets.iter().map(|c| u64::from(c.delivered)).sum();
    html! {
        figure {
            figcaption { (title) span.muted { " · " (total) " delivered · top " (max) } }
            svg viewBox="-4 -4 608 136" role="img" aria-label=(title) preserveAspectRatio="none" {
                line.axis x1="0" y1="120" x2="600" y2="120" {}
                polyline.s-accepted points=(line(|c| c.accepted)) {}
                polyline.s-delivered points=(line(|c| c.delivered)) {}
                polyline.s-deferred points=(line(|c| c.deferred)) {}
                polyline.s-dead points=(line(|c| c.dead)) {}
            }
            div.axis-labels { span { (start) } span { "now" } }
        }
    }
}

/// Client sessions, refused connections, failed logins.
fn inbound(s: &Snapshot) -> Markup {
    let i = &s.inbound;
    html! {
        h2 { "Clients" }
        p { "Sessions: " (i.open) " open, " (i.sessions) " since the relay started." }
        @if !i.refused.is_empty() {
            p { "Connections refused: "
                @for (n, (reason, count)) in i.refused.iter().enumerate() {
                    @if n > 0 { " · " } (reason) ": " (count)
                }
            }
        }
        @if i.auth_failures.is_empty() {
            p.muted { "No failed AUTH since the relay started." }
        } @else {
            div.scroll { table {
                tr { th { "Failed AUTH from" } th { "Times" } th { "Last" } }
                @for (address, count, at) in &i.auth_failures {
                    tr { td { (address) } td { (count) } td { (ago(s.now, *at)) } }
                }
            } }
        }
    }
}

fn latency(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn state(a: &AccountView, s: &Snapshot) -> Markup {
    let paused = s.paused.iter().find(|p| p.account == a.name);
    html! {
        @if let Some(p) = paused {
            span.bad { "paused" } " until " (until(s.now, p.until))
        } @else if let Some(why) = &a.unavailable {
            span.bad { "unavailable" }
            @if let Some(t) = a.unavailable_until { " until " (until(s.now, t)) }
            br; span.muted { (why) }
        } @else if let Some(t) = a.throttled_until {
            span.warn { "throttled" } " until " (until(s.now, t))
        } @else {
            span.ok { "delivering" }
        }
    }
}

fn token(a: &AccountView, now: Timestamp) -> Markup {
    html! {
        @if !a.needs_token {
            span.muted { "none needed" }
        } @else {
            @match a.token_expires {
                Some(t) if t > now => span.ok { (minutes(now.until(t))) " left" },
                Some(_) => span.bad { "expired" },
                None => span.warn { "none yet" },
            }
        }
    }
}

fn credential(a: &AccountView, now: Timestamp) -> Markup {
    html! {
        @match &a.credential {
            None => span.muted { "does not expire here" },
            Some((what, at)) => {
                @let days = now.days_until(*at);
                @let class = if *at <= now || days <= 7 { "bad" } else if days <= 30 { "warn" } else { "ok" };
                span class=(class) title=(at) {
                    (what) " "
                    @if *at <= now { "expired" } @else { "expires in " (days) " days" }
                }
            }
        }
    }
}

fn used(n: u64, limit: u32) -> Markup {
    html! {
        @if limit == u32::MAX { (n) span.muted { " (no limit)" } }
        @else {
            @let class = if n >= u64::from(limit) { "bad" } else if n * 10 >= u64::from(limit) * 8 { "warn" } else { "" };
            span class=(class) { (n) " / " (limit) }
        }
    }
}

fn queue(s: &Snapshot) -> Markup {
    html! {
        h2 { "Queue" }
        @if let Some(e) = &s.queue_error { p.bad { "The queue cannot be read: " (e) } }
        p {
            (s.queued) " waiting"
            @if let Some(oldest) = s.oldest { ", the oldest since " (ago(s.now, oldest)) }
            @for (account, n) in &s.per_account { " · " (account) ": " (n) }
        }
        form method="get" action="/" {
            input type="search" name="q" value=(s.search) placeholder="address, subject, account, queue id, reply" aria-label="Search";
            " " button type="submit" { "Search" }
            @if !s.search.is_empty() { " " a href="/" { "clear" } }
        }
        (pager(&s.queue, "page", &s.search, ("waiting message", "waiting messages")))
        @if !s.queue.rows.is_empty() {
            div.scroll { table {
                tr {
                    th { "Queue id" } th { "Account" } th { "From" } th { "To" } th { "Subject" } th { "Received" }
                    th { "Attempts" } th { "Next attempt" } th { "Last reply" }
                    @if s.csrf.is_some() { th { "" } }
                }
                @for e in &s.queue.rows {
                    tr {
                        (summary_cells(&e.message))
                        td { (ago(s.now, e.message.received)) }
                        td { (e.message.attempts) }
                        td { @if e.leased { span.ok { "being delivered" } } @else { (until(s.now, e.next_attempt)) } }
                        td.wrap { @if let Some(r) = &e.last_reply { (r) } }
                        @if let Some(csrf) = &s.csrf {
                            td { (action("/queue/retry", "Retry now", csrf, &e.message.id, None)) (action("/queue/delete", "Delete", csrf, &e.message.id, None)) }
                        }
                    }
                }
            } }
        }
    }
}

/// The cells a waiting message and a dead letter both have: queue id, account, From, To,
/// Subject.
fn summary_cells(m: &crate::queue::Summary) -> Markup {
    html! {
        td { code { (m.id) } }
        td { (m.account) }
        td.wrap { (m.sender) }
        td.wrap { (m.recipients.join(", ")) }
        td.wrap { @if let Some(subject) = &m.subject { (subject) } @else { span.muted { "(none)" } } }
    }
}

fn dead(s: &Snapshot) -> Markup {
    html! {
        h2 { "Dead letters" }
        p.muted {
            "Given up on. "
            @if s.csrf.is_none() {
                "Put one back with " code { "m365-mailer queue dead retry ID" }
                @if s.can_log_in { ", or log in to do it here" } "."
            }
        }
        (pager(&s.dead, "dead", &s.search, ("dead letter", "dead letters")))
        @if !s.dead.rows.is_empty() {
            div.scroll { table {
                tr {
                    th { "Queue id" } th { "Account" } th { "From" } th { "To" } th { "Subject" } th { "Given up" } th { "Reply" } th { "Cause and fix" }
                    @if s.csrf.is_some() { th { "" } }
                }
                @for d in &s.dead.rows {
                    tr {
                        (summary_cells(&d.message))
                        td { (ago(s.now, d.failed)) }
                        td.wrap { (d.reply) }
                        td.wrap { (d.diagnosis) }
                        @if let Some(csrf) = &s.csrf {
                            td { (action("/dead/retry", "Retry", csrf, &d.message.id, None)) (action("/dead/delete", "Delete", csrf, &d.message.id, Some(d.seq))) }
                        }
                    }
                }
            } }
        }
    }
}

/// One button: a POST form with the message, the dead letter's number and the CSRF token.
fn action(to: &str, label: &str, csrf: &str, id: &str, seq: Option<i64>) -> Markup {
    html! {
        form.inline method="post" action=(to) {
            input type="hidden" name="id" value=(id);
            @if let Some(seq) = seq { input type="hidden" name="seq" value=(seq); }
            input type="hidden" name="csrf" value=(csrf);
            button type="submit" { (label) }
        }
    }
}

/// The login form: the admin token, typed once, opens a session.
pub(crate) fn login_page(hostname: &str, enabled: bool, refused: bool) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Log in · m365-mailer relay on " (hostname) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "m365-mailer relay on " (hostname) }
                @if !enabled {
                    p { "No admin token is configured: the status page is read only. Set " code { "admin_token_file" } " in " code { "[relay]" } " to retry and delete from it." }
                } @else {
                    @if refused { p.bad role="alert" { "That is not the admin token." } }
                    form method="post" action="/login" {
                        label for="token" { "Admin token" } br;
                        input #token type="password" name="token" autocomplete="current-password" required;
                        " " button type="submit" { "Log in" }
                    }
                }
                p { a href="/" { "Back to the status page" } }
            }
        }
    }
    .into_string()
}

/// "12 waiting messages · page 2 of 3" with links to the others, keeping the search.
fn pager<T>(paged: &Paged<T>, key: &str, search: &str, (one, many): (&str, &str)) -> Markup {
    let link = |page: usize| {
        let mut url = format!("/?{key}={page}");
        if !search.is_empty() {
            url.push_str("&q=");
            url.push_str(&encode_query(search));
        }
        url
    };
    html! {
        p {
            (paged.total) " " (if paged.total == 1 { one } else { many })
            @if paged.pages() > 1 {
                " · page " (paged.page) " of " (paged.pages()) " "
                nav style="display:inline" {
                    @if paged.page > 1 { a href=(link(paged.page - 1)) { "previous" } }
                    @if paged.page < paged.pages() { a href=(link(paged.page + 1)) { "next" } }
                }
            }
        }
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
pub(super) fn encode_query(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn ago(now: Timestamp, then: Timestamp) -> Markup {
    html! { span title=(then) { (span_text(now.since(then))) " ago" } }
}

fn until(now: Timestamp, then: Timestamp) -> Markup {
    html! {
        span title=(then) {
            @if then <= now { "now" } @else { "in " (span_text(now.until(then))) }
        }
    }
}

fn minutes(d: Duration) -> String {
    format!("{} min", d.as_secs() / 60)
}

/// A duration the way people say it: 45 s, 12 min, 3 h, 2 d.
pub(super) fn span_text(d: Duration) -> String {
    match d.as_secs() {
        s @ 0..60 => format!("{s} s"),
        s @ 60..3600 => format!("{} min", s / 60),
        s @ 3600..172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}
