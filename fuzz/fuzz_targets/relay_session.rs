//! The relay's inbound session on arbitrary client bytes, split at arbitrary points: it never
//! panics, every reply line is `NNN` followed by a space or a dash, and it always either wants
//! more input or closes.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use m365_mailer::properties::loopback_policy;
use m365_mailer::relay::session::{Event, Session, Settings};

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else { return };
    let policy = loopback_policy(split & 1 == 1);
    let settings = Settings {
        max_message_size: 4096,
        max_line_length: 512,
        starttls: true,
        ..Settings::default()
    };
    let mut session = Session::new(Arc::new(settings), Arc::new(policy), "127.0.0.1".parse().unwrap(), false);
    let mut output = session.take_output();
    let step = usize::from(split >> 1).max(1);
    'feed: for chunk in input.chunks(step) {
        session.receive(chunk);
        loop {
            let event = session.next_event();
            output.extend(session.take_output());
            match event {
                Event::NeedInput => break,
                Event::Close => break 'feed,
                Event::StartTls => session.tls_started(),
                Event::CheckPassword { user, .. } => session.password_checked(&user, None),
                Event::Message(_) => session.stored(Ok("0123")),
            }
        }
    }
    let text = String::from_utf8(output).expect("replies are UTF-8");
    for line in text.split_terminator("\r\n") {
        let bytes = line.as_bytes();
        assert!(
            bytes.len() >= 4 && bytes[..3].iter().all(u8::is_ascii_digit) && (bytes[3] == b' ' || bytes[3] == b'-'),
            "malformed reply line {line:?}"
        );
    }
});
