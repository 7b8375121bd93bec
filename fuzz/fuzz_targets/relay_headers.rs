//! The relay's header checks on arbitrary message content from an allowed device: never a
//! panic; what it stores has CRLF line ends and at most one From, naming only addresses the
//! account may send as, by the relay's reading and by mail-parser's
//! (`m365_mailer::properties::relay_from_check`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, content)) = data.split_first() else { return };
    m365_mailer::properties::relay_from_check(content, flags & 1 == 1);
});
