//! `[relay.alerting]` (thresholds) and `[[relay.alerts]]` (webhook destinations). A webhook URL
//! is a credential: it comes from a file or an environment variable, never the config file,
//! and only as a [`Secret`].

use serde::Deserialize;
use toml::Spanned;

use super::{RawRelay, Reader, queue::secret_from};
use crate::config::{ConfigError, Env};
use crate::relay::alert::{AlertSettings, Destination, Format, Rule};
use crate::secret::Secret;

/// `[relay.alerting]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlerting {
    instance: Option<Spanned<String>>,
    account_unavailable_after: Option<Spanned<String>>,
    queue_age_over: Option<Spanned<String>>,
    queue_depth_over: Option<Spanned<u64>>,
    summary_window: Option<Spanned<String>>,
    check_interval: Option<Spanned<String>>,
}

/// One `[[relay.alerts]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlert {
    name: Option<Spanned<String>>,
    format: Spanned<String>,
    url_file: Option<Spanned<String>>,
    url_env: Option<Spanned<String>>,
    events: Option<Spanned<Vec<String>>>,
    /// Plain HTTP to a host other than this machine, which shows the URL to the network.
    #[serde(default)]
    plain_http: bool,
}

/// The alert settings of `raw`.
pub(super) fn alerts(
    r: &Reader<'_>,
    raw: &RawRelay,
    env: Env<'_>,
    hostname: &str,
) -> Result<AlertSettings, ConfigError> {
    let defaults = AlertSettings::off(hostname);
    let unset = RawAlerting::default();
    let a = raw.alerting.as_ref().unwrap_or(&unset);
    let key = |k: &str| format!("alerting.{k}");
    let instance = match &a.instance {
        Some(v) if v.get_ref().trim().is_empty() => return Err(r.invalid(v, &key("instance"), "must not be empty")),
        Some(v) => v.get_ref().trim().to_owned(),
        None => defaults.instance.clone(),
    };
    let settings = AlertSettings {
        destinations: Vec::new(),
        instance,
        unavailable_after: r.duration(
            a.account_unavailable_after.as_ref(),
            &key("account_unavailable_after"),
            defaults.unavailable_after,
        )?,
        queue_age_over: r.duration(
            a.queue_age_over.as_ref(),
            &key("queue_age_over"),
            defaults.queue_age_over,
        )?,
        queue_depth_over: r.count(
            a.queue_depth_over.as_ref(),
            &key("queue_depth_over"),
            defaults.queue_depth_over,
        )?,
        window: r.duration(a.summary_window.as_ref(), &key("summary_window"), defaults.window)?,
        check_every: r.duration(a.check_interval.as_ref(), &key("check_interval"), defaults.check_every)?,
    };
    let mut destinations: Vec<Destination> = Vec::new();
    for entry in &raw.alerts {
        let d = destination(r, entry, env)?;
        if destinations.iter().any(|other| other.name == d.name) {
            let at = entry.name.as_ref().map_or(&entry.format, |n| n);
            return Err(r.invalid(
                at,
                "alerts.name",
                format!("two destinations are named `{}`: give each its own `name`", d.name),
            ));
        }
        destinations.push(d);
    }
    Ok(AlertSettings {
        destinations,
        ..settings
    })
}

fn destination(r: &Reader<'_>, entry: &RawAlert, env: Env<'_>) -> Result<Destination, ConfigError> {
    let format_name = entry.format.get_ref().trim();
    let format = Format::ALL
        .into_iter()
        .find(|f| f.name() == format_name)
        .ok_or_else(|| {
            r.invalid(
                &entry.format,
                "alerts.format",
                format!("`{format_name}` is not a format: write json, teams, slack or ntfy"),
            )
        })?;
    let name = match &entry.name {
        Some(n) => {
            let name = n.get_ref().trim();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                return Err(r.invalid(
                    n,
                    "alerts.name",
                    "write letters, digits, `-`, `_` or `.` (the outbox names the destination so)",
                ));
            }
            name.to_owned()
        }
        None => format.name().to_owned(),
    };
    let rules = match &entry.events {
        None => Rule::ALL.to_vec(),
        Some(list) => {
            let mut rules = Vec::new();
            for event in list.get_ref() {
                let rule = Rule::parse(event.trim()).ok_or_else(|| {
                    let known: Vec<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
                    r.invalid(
                        list,
                        "alerts.events",
                        format!(
                            "`{}` is not an event: write some of {}",
                            event.escape_debug(),
                            known.join(", ")
                        ),
                    )
                })?;
                rules.push(rule);
            }
            if rules.is_empty() {
                return Err(r.invalid(list, "alerts.events", "lists no event: leave it out for all of them"));
            }
            rules
        }
    };
    let url = secret_from(
        r,
        env,
        ("alerts.url_file", entry.url_file.as_ref()),
        ("alerts.url_env", entry.url_env.as_ref()),
    )?
    .ok_or_else(|| {
        r.invalid(
            &entry.format,
            "alerts.url_file",
            format!("destination `{name}` has no URL: set url_file (a file holding the webhook URL) or url_env"),
        )
    })?;
    let at = entry.url_file.as_ref().or(entry.url_env.as_ref()).expect("one is set");
    let key = if entry.url_file.is_some() {
        "alerts.url_file"
    } else {
        "alerts.url_env"
    };
    let (url, topic) = check_url(&url, format, entry.plain_http).map_err(|e| r.invalid(at, key, e))?;
    Ok(Destination {
        name,
        format,
        url,
        topic,
        rules,
    })
}

/// The URL to post to and, for ntfy, the topic; the messages never quote the URL.
fn check_url(url: &Secret, format: Format, plain_http: bool) -> Result<(Secret, Option<Secret>), String> {
    let mut parsed =
        reqwest::Url::parse(url.expose().trim()).map_err(|e| format!("the webhook URL it holds is not a URL ({e})"))?;
    match parsed.scheme() {
        "https" => {}
        "http" => {
            let host = parsed.host_str().unwrap_or_default();
            let local = host.eq_ignore_ascii_case("localhost")
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !local && !plain_http {
                return Err("the webhook URL is plain http to another machine, which shows it to the network: use https, or add `plain_http = true` to this destination".into());
            }
        }
        other => return Err(format!("the webhook URL's scheme is `{other}`: use https")),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("the webhook URL names no host".into());
    }
    if format != Format::Ntfy {
        return Ok((Secret::new(parsed.to_string()), None));
    }
    // ntfy takes JSON at the server's root with the topic inside; the URL users copy is the
    // topic's.
    let topic = parsed
        .path_segments()
        .and_then(|mut s| s.next_back().map(str::to_owned))
        .filter(|t| !t.is_empty())
        .ok_or("an ntfy URL ends with its topic: write e.g. https://ntfy.sh/your-topic")?;
    parsed
        .path_segments_mut()
        .map_err(|()| "the webhook URL cannot have a path".to_owned())?
        .pop();
    let mut root = parsed.to_string();
    if !root.ends_with('/') && parsed.query().is_none() {
        root.push('/');
    }
    Ok((Secret::new(root), Some(Secret::new(topic))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ntfy_topic_url_posts_to_the_server_with_the_topic_inside() {
        let (url, topic) = check_url(
            &Secret::new("https://ntfy.example.com/ops/relay-alerts"),
            Format::Ntfy,
            false,
        )
        .unwrap();
        assert_eq!(url.expose(), "https://ntfy.example.com/ops/");
        assert_eq!(topic.unwrap().expose(), "relay-alerts");
        let (url, _) = check_url(&Secret::new("https://ntfy.sh/t?auth=abc"), Format::Ntfy, false).unwrap();
        assert_eq!(url.expose(), "https://ntfy.sh/?auth=abc");
        assert!(check_url(&Secret::new("https://ntfy.sh/"), Format::Ntfy, false).is_err());
    }

    #[test]
    fn plain_http_goes_to_this_machine_only_unless_asked() {
        for local in [
            "http://127.0.0.1:8080/hook",
            "http://[::1]/hook",
            "http://localhost/hook",
        ] {
            assert!(check_url(&Secret::new(local), Format::Json, false).is_ok(), "{local}");
        }
        let error = check_url(&Secret::new("http://hooks.example.com/x"), Format::Json, false).unwrap_err();
        assert!(error.contains("plain_http = true"), "{error}");
        assert!(!error.contains("hooks.example.com"), "the URL is never quoted: {error}");
        assert!(check_url(&Secret::new("http://hooks.example.com/x"), Format::Json, true).is_ok());
        assert!(check_url(&Secret::new("ftp://hooks.example.com/x"), Format::Json, true).is_err());
        let error = check_url(&Secret::new("not a url with a secret"), Format::Slack, false).unwrap_err();
        assert!(!error.contains("secret"), "{error}");
    }
}
