//! The status page in a real browser: headless Chromium (Debian's, which `.ci/run` installs)
//! loads it from a relay with a queue and a dead letter whose reply is hostile markup, and the
//! DOM it builds holds that markup as text only. `M365_TEST_SCREENSHOT=PATH` also saves what
//! it shows (the picture in docs/relay.md comes from there).

use std::time::Duration;

use m365_emulator::{Fault, Stage};

use crate::support::*;

const HOSTILE: &str = "550 5.7.1 <img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>";

/// Runs headless Chromium on `url` with `args`; its standard output.
async fn chromium(program: &std::path::Path, dir: &std::path::Path, args: &[&str], url: &str) -> String {
    let out = tokio::process::Command::new(program)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", dir.display()))
        .args(args)
        .arg(url)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(90), out)
        .await
        .expect("Chromium answers within 90 s")
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_renders_the_page_and_runs_nothing_from_a_message() {
    let Some(browser) = ["chromium", "chromium-browser"].iter().find_map(|name| program(name)) else {
        return;
    };
    let world = World::start().await;
    let relay = crate::status_page::relay_with_a_dead_letter(&world, HOSTILE, 2).await;

    let url = format!("http://{}/", relay.admin.unwrap());
    let profile = world.dir.path().join("chromium");
    let dom = chromium(&browser, &profile, &["--dump-dom"], &url).await;
    let parsed = scraper::Html::parse_document(&dom);
    let select = |css: &str| scraper::Selector::parse(css).unwrap();
    let title: String = parsed.select(&select("title")).next().unwrap().text().collect();
    assert!(title.starts_with("m365-mailer relay on "), "{title}");
    assert!(!title.contains("pwned"), "a script from the reply ran: {title}");
    assert_eq!(parsed.select(&select("img")).count(), 0, "{dom}");
    assert_eq!(parsed.select(&select("script")).count(), 0, "{dom}");
    let text: String = parsed.root_element().text().collect();
    assert!(text.contains(HOSTILE), "the reply is shown as it came:\n{dom}");
    assert!(text.contains("2 waiting") && text.contains("1 dead letter"), "{text}");
    assert_eq!(parsed.select(&select("svg")).count(), 2, "both charts drawn");

    if let Some(path) = std::env::var_os("M365_TEST_SCREENSHOT") {
        let path = std::path::PathBuf::from(path);
        let shot = format!("--screenshot={}", path.display());
        chromium(
            &browser,
            &profile,
            &[&shot, "--window-size=1280,1100", "--hide-scrollbars"],
            &url,
        )
        .await;
        assert!(std::fs::metadata(&path).unwrap().len() > 10_000);
    }
    relay.kill().await;
}

/// A page of headless Chromium driven over the DevTools protocol.
struct Page {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    next: u64,
}

impl Page {
    /// Sends `method` and waits for its answer; with `load`, also for the page it loads.
    async fn call(&mut self, method: &str, params: serde_json::Value, load: bool) -> serde_json::Value {
        use futures_util::{SinkExt as _, StreamExt as _};
        self.next += 1;
        let id = self.next;
        let message = serde_json::json!({ "id": id, "method": method, "params": params });
        self.socket
            .send(tokio_tungstenite::tungstenite::Message::text(message.to_string()))
            .await
            .unwrap();
        let (mut answer, mut loaded) = (None, !load);
        while answer.is_none() || !loaded {
            let frame = tokio::time::timeout(Duration::from_secs(30), self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method}"))
                .unwrap()
                .unwrap();
            let Ok(text) = frame.into_text() else { continue };
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            if value["id"] == id {
                assert!(value.get("error").is_none(), "{method}: {value}");
                answer = Some(value["result"].clone());
            } else if value["method"] == "Page.loadEventFired" {
                loaded = true;
            }
        }
        answer.unwrap()
    }

    /// Runs `script` in the page (DevTools runs it whatever the page's CSP says).
    async fn run(&mut self, script: &str, load: bool) -> serde_json::Value {
        let params = serde_json::json!({ "expression": script, "returnByValue": true });
        self.call("Runtime.evaluate", params, load).await["result"]["value"].clone()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_letter_is_retried_by_pressing_its_button() {
    use tokio::io::AsyncBufReadExt as _;
    const TOKEN: &str = "browser-test-admin-token-0123";
    let Some(browser) = ["chromium", "chromium-browser"].iter().find_map(|name| program(name)) else {
        return;
    };
    let mut world = World::start().await;
    world.set("STATUS_TOKEN", TOKEN);
    world
        .emulator
        .faults()
        .add(Fault::reply(Stage::DataEnd, "550 5.7.1 Refused once").times(1))
        .unwrap();
    let relay = world
        .relay("[relay]\nadmin_token_env = \"STATUS_TOKEN\"\n[[relay.listen]]\naddress = \"127.0.0.1:0\"\n")
        .await;
    submit(
        relay.addr().port(),
        &["bob@fabrikam.com"],
        &complete_message("pressed retry"),
    );
    relay.wait_for_log("dead-lettered", Duration::from_secs(20)).await;

    let mut chromium = tokio::process::Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", world.dir.path().join("cdp").display()))
        .args(["--remote-debugging-port=0", "about:blank"])
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(chromium.stderr.take().unwrap()).lines();
    let browser_ws = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("DevTools listening on ") {
                return url.trim().to_owned();
            }
        }
        panic!("Chromium ended without its DevTools address");
    })
    .await
    .expect("Chromium starts");
    // The page target's socket, next to the browser's.
    let port = browser_ws
        .split(':')
        .nth(2)
        .and_then(|p| p.split('/').next())
        .unwrap()
        .to_owned();
    let targets: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let page_ws = targets
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "page")
        .and_then(|t| t["webSocketDebuggerUrl"].as_str())
        .unwrap()
        .to_owned();
    let (socket, _) = tokio_tungstenite::connect_async(page_ws).await.unwrap();
    let mut page = Page { socket, next: 0 };
    page.call("Page.enable", serde_json::json!({}), false).await;

    let base = format!("http://{}", relay.admin.unwrap());
    page.call("Page.navigate", serde_json::json!({ "url": format!("{base}/") }), true)
        .await;
    let text = page.run("document.body.innerText", false).await;
    assert!(text.as_str().unwrap().contains("1 dead letter"), "{text}");
    assert_eq!(
        page.run("document.querySelectorAll('form[method=post]').length", false)
            .await,
        0
    );

    // Log in with the token, as a person would: type it, press the button.
    page.call(
        "Page.navigate",
        serde_json::json!({ "url": format!("{base}/login") }),
        true,
    )
    .await;
    let typed = format!(
        "document.querySelector('#token').value = '{TOKEN}'; document.querySelector('form button').click(); true"
    );
    page.run(&typed, true).await;
    let retry = "document.querySelector(\"form[action='/dead/retry'] button\")";
    assert_eq!(
        page.run(&format!("{retry} !== null"), false).await,
        true,
        "a retry button once logged in"
    );
    page.run(&format!("{retry}.click(); true"), true).await;
    let text = page.run("document.body.innerText", false).await;
    assert!(
        text.as_str()
            .unwrap()
            .contains("The dead letter is back in the queue, due now."),
        "{text}"
    );
    assert_eq!(
        world.wait_for_messages(1, Duration::from_secs(20)).await,
        1,
        "{}",
        relay.log_text()
    );
    let _ = chromium.kill().await;
    relay.kill().await;
}
