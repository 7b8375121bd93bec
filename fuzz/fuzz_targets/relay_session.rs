//! The relay's inbound session on arbitrary client bytes, split at arbitrary points: it never
//! panics, every reply line is `NNN` followed by a space or a dash, and it always either wants
//! more input or closes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    m365_mailer::properties::relay_session(data);
});
