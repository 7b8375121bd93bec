//! A config file of arbitrary bytes: reading it and each account's table never panics, and an
//! error about a value names a line of the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    m365_mailer::properties::config_file(data);
});
