//! Cutting attachments out of arbitrary MIME for Graph's large-message path: never a panic; the
//! rest is the message with pieces taken out, in order (`m365_mailer::properties::graph_split`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    m365_mailer::properties::graph_split(data);
});
