//! Alert bodies in every format for a dead letter of arbitrary text, and stored events of
//! arbitrary bytes: never a panic, and nothing read as markup
//! (`m365_mailer::properties::alert_bodies`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    m365_mailer::properties::alert_bodies(data);
});
