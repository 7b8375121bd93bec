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
    world
        .emulator
        .faults()
        .add(Fault::reply(Stage::DataEnd, HOSTILE).times(1))
        .unwrap();
    let relay = world
        .relay("[[relay.listen]]\naddress = \"127.0.0.1:0\"\n\n[relay.delivery]\nconnections_per_account = 1\n")
        .await;
    let port = relay.addr().port();
    submit(port, &["bob@fabrikam.com"], &complete_message("hostile reply"));
    relay.wait_for_log("dead-lettered", Duration::from_secs(20)).await;
    world
        .emulator
        .faults()
        .add(Fault::reply(
            Stage::DataEnd,
            "451 4.3.2 System not accepting network messages",
        ))
        .unwrap();
    for i in 0..2 {
        submit(
            port,
            &["carol@fabrikam.com"],
            &complete_message(&format!("waiting {i}")),
        );
    }
    relay.wait_for_log("deferred", Duration::from_secs(20)).await;

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
