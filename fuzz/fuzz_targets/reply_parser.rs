//! The SMTP reply parser on arbitrary server bytes, fed in two pieces: it must never panic,
//! and a reply it returns must have a valid code and consume what it parsed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    m365_mailer::properties::reply_parser(data);
});
