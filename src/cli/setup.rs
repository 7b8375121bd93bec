//! `setup`: print the steps for the user's ids.

use super::args::SetupArgs;
use super::exit::{Code, Failure};
use crate::setup::{self, Spec};

pub(super) fn run(args: &SetupArgs) -> Result<(), Failure> {
    let spec = Spec {
        tenant: args.tenant.clone(),
        client_id: args.client_id.clone(),
        mailbox: args.mailbox.clone(),
        sp_id: args.sp_id.clone(),
        send_as: args.send_as.clone(),
        certificate: args.certificate.clone(),
        display_name: args.display_name.clone(),
        rbac: args.rbac,
    };
    let script = setup::script(&spec).map_err(|e| Failure::new(Code::Usage, e.to_string()))?;
    print!("{script}");
    Ok(())
}
