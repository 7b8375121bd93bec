//! An account set into config text of arbitrary bytes, as `setup --apply` rewrites the config
//! file: never a panic, the values read back, nothing else lost
//! (`m365_mailer::properties::config_rewrite`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    m365_mailer::properties::config_rewrite(data);
});
