//! sendmail reading a message: `message::from_raw`, with and without `-t`, on arbitrary bytes.
//! Never a panic; a message it accepts has every To/Cc/Bcc address in its envelope once, no Bcc
//! field, one From, and no header line that was neither in the input nor added
//! (`m365_mailer::properties::from_raw`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, raw)) = data.split_first() else { return };
    let full_name = (flags & 2 != 0).then_some("Backup \"Job\", nightly");
    m365_mailer::properties::from_raw(raw, flags & 1 == 1, full_name);
});
