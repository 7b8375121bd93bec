//! `setup`: print the steps for the user's ids, or with `--apply` do the Entra part
//! (`apply.rs`).

use super::args::SetupArgs;
use super::exit::{Code, Failure};
use crate::setup::{self, Access, AcsIds, Spec};

pub(super) async fn run(args: &SetupArgs) -> Result<(), Failure> {
    let spec = spec(args);
    if args.apply {
        return super::apply::run(args, spec).await;
    }
    let script = setup::script(&spec).map_err(|e| Failure::new(Code::Usage, e.to_string()))?;
    print!("{script}");
    Ok(())
}

/// The flags as a spec. `--rbac` (hidden: RBAC is the default now) and `--per-mailbox` exclude
/// each other in clap; either one given is kept, so another service than exchange refuses it.
fn spec(args: &SetupArgs) -> Spec {
    let access = if args.per_mailbox {
        Some(Access::PerMailbox)
    } else {
        args.rbac.then_some(Access::Rbac)
    };
    Spec {
        service: args.service,
        tenant: args.tenant.clone(),
        client_id: args.client_id.clone().unwrap_or_default(),
        mailbox: args.mailbox.clone(),
        sp_id: args.sp_id.clone(),
        send_as: args.send_as.clone(),
        certificate: args.certificate.clone(),
        display_name: args.display_name.clone(),
        access,
        acs: AcsIds {
            subscription: args.subscription.clone(),
            resource_group: args.resource_group.clone(),
            resource: args.acs_resource.clone(),
            smtp_username: args.smtp_username.clone(),
        },
        entra_done: false,
    }
}
