//! Round trip: whatever the client's dot-stuffing makes of a message, the relay's DATA reading
//! gives back exactly the client's CRLF-normalised content, its header section ended by an
//! empty line (or refuses a From it may not use, or two).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    m365_mailer::properties::dot_unstuffing(data);
});
