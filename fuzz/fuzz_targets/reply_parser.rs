//! The SMTP reply parser on arbitrary server bytes, fed in two pieces: it must never panic,
//! and a reply it returns must have a valid code and consume what it parsed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use m365_mailer::smtp::reply::ReplyParser;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| *b as usize).min(data.len());
    let mut parser = ReplyParser::default();
    let mut buffer = data[..split].to_vec();
    let mut rest = Some(&data[split..]);
    loop {
        match parser.parse(&mut buffer) {
            Ok(Some(reply)) => assert!((200..600).contains(&reply.code())),
            Ok(None) => match rest.take() {
                Some(more) => buffer.extend_from_slice(more),
                None => break,
            },
            Err(_) => break,
        }
    }
});
