//! The JSON form of Graph's `sendMail` built from arbitrary MIME: never a panic; every address
//! of every To/Cc/Bcc field becomes a recipient; custom header names are ASCII
//! (`m365_mailer::properties::graph_json`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    m365_mailer::properties::graph_json(data);
});
