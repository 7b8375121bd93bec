//! The token endpoint's answers on arbitrary bytes and statuses: parsing never panics and an
//! error always has a description.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    m365_mailer::properties::token_response(data);
});
