//! The relay's From rewriting (`rewrite_sender = true`) on arbitrary bytes: never a panic; one
//! From, the mailbox's; otherwise only the input's fields and a Reply-To with the original From
//! (`m365_mailer::properties::rewrite_from`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    m365_mailer::properties::rewrite_from(data);
});
