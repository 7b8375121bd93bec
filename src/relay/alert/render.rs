//! The body of an alert, in each destination's format (pure). Every value that came from a
//! message, a client or Microsoft (addresses, replies) is data to these formats, never markup:
//! Teams gets it in `TextRun`s, which Adaptive Cards never read as Markdown; Slack in
//! `plain_text` objects, and its `text` fallback with `&`, `<` and `>` escaped as Slack asks;
//! ntfy as a plain message (no `markdown`). The bodies are built as `serde_json` values, so
//! quoting is the library's.

use serde_json::{Value, json};

use super::{Event, Format, Kind, Severity};

/// Events listed in one alert at most; a summary says how many more there were.
pub(crate) const LISTED: usize = 10;
/// Events the generic JSON body carries at most.
const JSON_LISTED: usize = 100;

/// One alert: one event, or a summary of several of the same kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Notice<'a> {
    /// Their kind.
    pub(crate) kind: Kind,
    /// The events, oldest first (at least one).
    pub(crate) events: &'a [Event],
    /// The relay's name.
    pub(crate) instance: &'a str,
}

impl Notice<'_> {
    /// The event's own title, or the summary's.
    pub(crate) fn title(&self) -> String {
        match self.events {
            [one] => one.title.clone(),
            all => self.kind.summary(all.len()),
        }
    }

    /// The events listed, and how many are left out.
    fn listed(&self, at_most: usize) -> (&[Event], usize) {
        let shown = &self.events[..self.events.len().min(at_most)];
        (shown, self.events.len() - shown.len())
    }

    /// Who says it, and when the first event happened.
    fn byline(&self) -> String {
        let at = self.events.first().map(|e| e.at.to_string()).unwrap_or_default();
        format!("m365-mailer relay {} · {at}", self.instance)
    }

    /// The events as plain text, for the formats without structure, at most `max` characters
    /// of it, then how many events are left out.
    fn text(&self, at_most: usize, max: usize) -> String {
        let (shown, more) = self.listed(at_most);
        let mut out = Vec::new();
        for event in shown {
            let mut lines = Vec::new();
            if self.events.len() > 1 {
                lines.push(event.title.clone());
            }
            lines.extend(event.facts.iter().map(|(label, value)| format!("{label}: {value}")));
            out.push(lines.join("\n"));
        }
        let mut text = clip(&out.join("\n\n"), max);
        if more > 0 {
            text.push_str(&format!("\n\n… and {more} more"));
        }
        text
    }
}

/// The JSON body posted for `notice` in `format` (`topic`: ntfy's).
pub(crate) fn body(format: Format, notice: &Notice<'_>, topic: Option<&str>) -> Vec<u8> {
    let value = match format {
        Format::Json => generic(notice),
        Format::Teams => teams(notice),
        Format::Slack => slack(notice),
        Format::Ntfy => ntfy(notice, topic.unwrap_or_default()),
    };
    serde_json::to_vec(&value).expect("a JSON value serialises")
}

fn generic(notice: &Notice<'_>) -> Value {
    let (shown, more) = notice.listed(JSON_LISTED);
    let events: Vec<Value> = shown
        .iter()
        .map(|e| {
            let facts: serde_json::Map<String, Value> = e
                .facts
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect();
            json!({
                "kind": e.kind.name(),
                "at": e.at.to_string(),
                "title": e.title,
                "account": e.account,
                "facts": facts,
            })
        })
        .collect();
    json!({
        "source": "m365-mailer",
        "version": 1,
        "instance": notice.instance,
        "kind": notice.kind.name(),
        "severity": notice.kind.severity().name(),
        "title": notice.title(),
        "count": notice.events.len(),
        "omitted": more,
        "events": events,
    })
}

/// Adaptive Card colours by severity.
fn card_colour(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "Attention",
        Severity::Warning => "Warning",
        Severity::Resolved => "Good",
    }
}

/// A line of `TextRun`s: never read as Markdown.
fn rich(runs: Vec<Value>) -> Value {
    json!({ "type": "RichTextBlock", "inlines": Value::Array(runs) })
}

fn run(text: &str) -> Value {
    json!({ "type": "TextRun", "text": text })
}

fn teams(notice: &Notice<'_>) -> Value {
    // The title's `id` names the kind, for a flow that routes by it.
    let mut title = rich(vec![json!({
        "type": "TextRun",
        "text": notice.title(),
        "weight": "Bolder",
        "size": "Medium",
        "color": card_colour(notice.kind.severity()),
    })]);
    title["id"] = Value::from(notice.kind.name());
    let mut body = vec![
        title,
        rich(vec![json!({
            "type": "TextRun",
            "text": notice.byline(),
            "isSubtle": true,
            "size": "Small",
        })]),
    ];
    let (shown, more) = notice.listed(LISTED);
    for event in shown {
        let mut items = Vec::new();
        if notice.events.len() > 1 {
            items.push(rich(vec![
                json!({"type": "TextRun", "text": event.title, "weight": "Bolder"}),
            ]));
        }
        for (label, value) in &event.facts {
            items.push(rich(vec![
                json!({"type": "TextRun", "text": format!("{label}: "), "weight": "Bolder"}),
                run(value),
            ]));
        }
        if !items.is_empty() {
            body.push(json!({ "type": "Container", "separator": true, "items": items }));
        }
    }
    if more > 0 {
        body.push(rich(vec![run(&format!("… and {more} more"))]));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "msteams": { "width": "Full" },
                "body": body,
            },
        }],
    })
}

/// Slack's escaping for text it reads as `mrkdwn`.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// At most `max` characters, ending in `…` when cut.
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn plain(text: &str, max: usize) -> Value {
    json!({ "type": "plain_text", "text": clip(text, max), "emoji": false })
}

fn slack(notice: &Notice<'_>) -> Value {
    let title = notice.title();
    let mut blocks = vec![
        json!({ "type": "header", "block_id": notice.kind.name(), "text": plain(&title, 150) }),
        json!({ "type": "context", "elements": [plain(&notice.byline(), 2000)] }),
    ];
    let (shown, more) = notice.listed(LISTED);
    for event in shown {
        let mut lines = Vec::new();
        if notice.events.len() > 1 {
            lines.push(event.title.clone());
        }
        lines.extend(event.facts.iter().map(|(label, value)| format!("{label}: {value}")));
        if !lines.is_empty() {
            blocks.push(json!({ "type": "section", "text": plain(&lines.join("\n"), 3000) }));
        }
    }
    if more > 0 {
        blocks.push(json!({ "type": "context", "elements": [plain(&format!("… and {more} more"), 2000)] }));
    }
    json!({
        "text": slack_escape(&format!("{}\n{}", clip(&title, 150), notice.text(LISTED, 2500))),
        "blocks": blocks,
    })
}

fn ntfy(notice: &Notice<'_>, topic: &str) -> Value {
    let (priority, tag) = match notice.kind.severity() {
        Severity::Error => (5, "rotating_light"),
        Severity::Warning => (4, "warning"),
        Severity::Resolved => (3, "white_check_mark"),
    };
    // A phone's notification: the first three events. ntfy turns a message over 4,096 bytes
    // into an attachment: 800 characters are at most 3,200 bytes.
    let message = format!("{}\n\n{}", notice.text(3, 800), notice.byline());
    json!({
        "topic": topic,
        "title": clip(&notice.title(), 250),
        "message": message.trim_start(),
        "priority": priority,
        "tags": [tag, "m365-mailer", notice.kind.name()],
    })
}
