//! Round trip: whatever the client's dot-stuffing makes of a message, the relay's DATA reading
//! gives back exactly the client's CRLF-normalised content, its header section ended by an
//! empty line (or refuses a From it may not use, or two).
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use m365_mailer::properties::loopback_policy;
use m365_mailer::relay::session::{Event, Session, Settings};
use m365_mailer::smtp::transparency;

fuzz_target!(|content: &[u8]| {
    let policy = loopback_policy(false);
    let mut session = Session::new(Arc::new(Settings::default()), Arc::new(policy), "127.0.0.1".parse().unwrap(), false);
    session.receive(b"EHLO fuzz\r\nMAIL FROM:<relay@contoso.com>\r\nRCPT TO:<a@fabrikam.com>\r\nDATA\r\n");
    session.receive(&transparency::data_content(content));
    let mut replies = Vec::new();
    loop {
        let event = session.next_event();
        replies.extend(session.take_output());
        match event {
            Event::Message(accepted) => {
                let normalised = transparency::normalize_line_endings(content);
                assert_eq!(accepted.content, m365_mailer::message::end_head(&normalised).as_ref());
                return;
            }
            Event::NeedInput | Event::Close => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let replies = String::from_utf8_lossy(&replies);
    assert!(
        replies.contains("550 5.7.60 ") || replies.contains("550 5.6.0 "),
        "neither accepted nor refused for its From: {replies}"
    );
});
