//! The token endpoint's answers on arbitrary bytes and statuses: parsing never panics and an
//! error always has a description.
#![no_main]

use libfuzzer_sys::fuzz_target;
use m365_mailer::oauth::response;

fuzz_target!(|data: &[u8]| {
    let _ = response::parse_token(data);
    let status = data.first().map_or(400, |b| 400 + u16::from(*b));
    let error = response::parse_error(status, data);
    assert!(!error.description.is_empty());
    let _ = error.is_transient();
});
