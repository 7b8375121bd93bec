//! Microsoft Graph directory answers of arbitrary bytes, as `setup --apply` reads them: never a
//! panic, every id a canonical GUID (`m365_mailer::properties::directory_answers`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    m365_mailer::properties::directory_answers(data);
});
