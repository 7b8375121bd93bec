//! The page against hostile values (parsed back as a browser would, with html5ever), and the
//! paging and search.

use std::time::Duration;

use super::*;
use crate::queue::Summary;

const HOSTILE: &str = "\"><script>alert(1)</script><img src=x onerror=alert(2)>&amp;";

fn summary(id: &str, account: &str, sender: &str) -> Summary {
    Summary {
        id: id.to_owned(),
        account: account.to_owned(),
        sender: sender.to_owned(),
        recipients: vec![format!("{HOSTILE}@contoso.com"), "ops@contoso.com".to_owned()],
        size: 100,
        message_id: Some(format!("<{HOSTILE}>")),
        client: "192.0.2.7".to_owned(),
        received: Timestamp::from_unix_secs(1_800_000_000),
        attempts: 2,
        subject: Some(format!("Scan {HOSTILE}")),
    }
}

fn entry(i: usize) -> Entry {
    Entry {
        message: summary(
            &format!("id{i:04}"),
            if i.is_multiple_of(2) { "main" } else { "bulk" },
            HOSTILE,
        ),
        next_attempt: Timestamp::from_unix_secs(1_800_000_600),
        leased: false,
        last_reply: Some(format!("451 4.7.500 {HOSTILE}")),
    }
}

fn account() -> AccountView {
    AccountView {
        name: format!("main{HOSTILE}"),
        service: Service::Hve,
        mailbox: format!("{HOSTILE}@contoso.com"),
        transport: Transport::Smtp,
        token_expires: Some(Timestamp::from_unix_secs(1_800_000_000 + 1800)),
        needs_token: true,
        credential: Some((
            "client secret".to_owned(),
            Timestamp::from_unix_secs(1_800_000_000 + 10 * 86_400),
        )),
        usage: Usage {
            minute: 3,
            hour: None,
            recipients: 90_000,
            paused_until: None,
        },
        limits: SendLimits {
            recipients: 100_000,
            messages: u32::MAX,
            ..SendLimits::default()
        },
        connections: 2,
        unavailable: Some(format!("421 4.3.2 {HOSTILE}")),
        unavailable_until: Some(Timestamp::from_unix_secs(1_800_000_060)),
        throttled_until: None,
        last_reply: Some(LastReply {
            at: Timestamp::from_unix_secs(1_799_999_970),
            reply: format!("535 5.7.3 {HOSTILE}"),
            diagnosis: format!("Cause: the app was not given access {HOSTILE}"),
        }),
    }
}

fn snapshot(entries: Vec<Entry>, request: &Request) -> Snapshot {
    let dead = vec![DeadEntry {
        seq: 1,
        message: summary("dead0001", "main", HOSTILE),
        failed: Timestamp::from_unix_secs(1_799_999_000),
        reply: format!("550 5.7.1 {HOSTILE}"),
        diagnosis: format!("Cause: {HOSTILE}"),
    }];
    let q = request.q.clone();
    Snapshot {
        now: Timestamp::from_unix_secs(1_800_000_000),
        hostname: "relay.contoso.com".to_owned(),
        accounts: vec![account()],
        paused: Vec::new(),
        queued: entries.len(),
        oldest: entries.first().map(|e| e.message.received),
        per_account: count_per_account(&entries),
        queue: Paged::of(entries, |e| entry_matches(e, &q), request.page),
        dead: Paged::of(dead, |d| dead_matches(d, &q), request.dead),
        search: q,
        queue_error: None,
        csrf: None,
        can_log_in: true,
        notice: request.done.as_deref().and_then(notice),
        minutes: vec![Counts::default(); 60],
        hours: vec![Counts::default(); 24],
        deliveries: vec![Delivery {
            at: Timestamp::from_unix_secs(1_799_999_990),
            queue_id: "delivered1".to_owned(),
            account: "main".to_owned(),
            recipients: 2,
            latency: Duration::from_millis(1250),
            reply: format!("250 2.0.0 OK {HOSTILE}"),
        }],
        inbound: Inbound {
            open: 3,
            sessions: 120,
            refused: vec![("too many connections from this client".to_owned(), 4)],
            auth_failures: vec![("192.0.2.66".to_owned(), 17, Timestamp::from_unix_secs(1_799_999_940))],
        },
    }
}

#[test]
fn hostile_values_stay_text() {
    let request = Request {
        q: HOSTILE.to_owned(),
        ..Request::default()
    };
    let html = render(&snapshot(vec![entry(0)], &request));
    let dom = scraper::Html::parse_document(&html);
    let select = |css: &str| scraper::Selector::parse(css).unwrap();
    assert_eq!(dom.select(&select("script")).count(), 0, "no script at all");
    assert_eq!(dom.select(&select("img")).count(), 0);
    for element in dom.select(&select("*")) {
        for (name, _) in element.value().attrs() {
            assert!(!name.starts_with("on"), "an event handler attribute: {name}");
        }
    }
    let text: String = dom.root_element().text().collect();
    for shown in [
        format!("main{HOSTILE}"),
        format!("{HOSTILE}@contoso.com"),
        format!("451 4.7.500 {HOSTILE}"),
        format!("550 5.7.1 {HOSTILE}"),
        format!("421 4.3.2 {HOSTILE}"),
        format!("250 2.0.0 OK {HOSTILE}"),
        format!("535 5.7.3 {HOSTILE}"),
        format!("Cause: the app was not given access {HOSTILE}"),
        format!("Scan {HOSTILE}"),
    ] {
        assert!(text.contains(&shown), "{shown:?} is shown as text");
    }
    assert_eq!(
        dom.select(&select("svg polyline")).count(),
        8,
        "two charts, four lines each"
    );
    let search = dom.select(&select("input[name=q]")).next().unwrap();
    assert_eq!(
        search.value().attr("value"),
        Some(HOSTILE),
        "the search box holds it as typed"
    );
}

#[test]
fn queue_pages_and_search_keep_each_other() {
    let entries: Vec<Entry> = (0..120).map(entry).collect();
    let second = snapshot(
        entries.clone(),
        &Request {
            page: Some(2),
            ..Request::default()
        },
    );
    assert_eq!(
        (second.queue.total, second.queue.pages(), second.queue.page),
        (120, 3, 2)
    );
    assert_eq!(second.queue.rows.first().unwrap().message.id, "id0050");
    assert_eq!(second.per_account, [("bulk".to_owned(), 60), ("main".to_owned(), 60)]);
    let html = render(&second);
    assert!(html.contains("page 2 of 3") && html.contains("href=\"/?page=1\"") && html.contains("href=\"/?page=3\""));

    // A search for an id narrows to one; its pager links keep the search, encoded.
    let found = snapshot(
        entries.clone(),
        &Request {
            q: "ID0107".to_owned(),
            ..Request::default()
        },
    );
    assert_eq!(found.queue.total, 1);
    let by_subject = snapshot(
        entries.clone(),
        &Request {
            q: "scan \"><SCRIPT".to_owned(),
            ..Request::default()
        },
    );
    assert_eq!(
        by_subject.queue.total, 120,
        "the subject is searched, case-insensitively"
    );
    let beyond = snapshot(
        entries,
        &Request {
            q: "bulk & co".to_owned(),
            page: Some(99),
            ..Request::default()
        },
    );
    assert_eq!(
        (beyond.queue.total, beyond.queue.page),
        (0, 1),
        "a page past the end is the last"
    );
    assert_eq!(page::encode_query("bulk & co/é"), "bulk%20%26%20co%2F%C3%A9");
}

#[test]
fn states_limits_and_times_in_words() {
    let html = render(&snapshot(Vec::new(), &Request::default()));
    assert!(html.contains("unavailable") && html.contains("in 1 min"), "{html}");
    assert!(html.contains("30 min left"), "the token's time left");
    assert!(html.contains("client secret expires in 10 days"));
    assert!(
        html.contains("90000 / 100000"),
        "recipients of the day against the limit"
    );
    assert!(html.contains("no limit"), "HVE has no message rate");
    assert!(html.contains("3 open, 120 since the relay started"));
    assert!(html.contains("too many connections from this client") && html.contains("192.0.2.66"));
    assert_eq!(page::span_text(Duration::from_secs(7200)), "2 h");
}

#[test]
fn buttons_only_in_a_session_and_each_carries_its_csrf_token() {
    let read_only = render(&snapshot(vec![entry(1)], &Request::default()));
    let dom = scraper::Html::parse_document(&read_only);
    let forms = scraper::Selector::parse("form[method=post]").unwrap();
    assert_eq!(dom.select(&forms).count(), 0, "no change without a session");
    assert!(read_only.contains("href=\"/login\""));

    let mut s = snapshot(
        vec![entry(1)],
        &Request {
            done: Some("dead-retry-done".to_owned()),
            ..Request::default()
        },
    );
    s.csrf = Some("c5rf".to_owned());
    let html = render(&s);
    let dom = scraper::Html::parse_document(&html);
    let actions: Vec<String> = dom
        .select(&forms)
        .map(|f| f.value().attr("action").unwrap().to_owned())
        .collect();
    assert_eq!(
        actions,
        [
            "/logout",
            "/queue/retry",
            "/queue/delete",
            "/dead/retry",
            "/dead/delete"
        ]
    );
    let csrf = scraper::Selector::parse("form[method=post] input[name=csrf]").unwrap();
    assert!(dom.select(&csrf).all(|i| i.value().attr("value") == Some("c5rf")));
    assert_eq!(dom.select(&csrf).count(), 5);
    assert!(html.contains("The dead letter is back in the queue, due now."));
    assert_eq!(notice("<script>"), None, "only the page's own codes are shown");
}
