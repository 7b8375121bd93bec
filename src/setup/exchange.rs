//! `setup --service exchange`: a mailbox on Exchange Online. By default RBAC for Applications
//! (fact sheet §8: since November 2025, MC1158911 / roadmap 498356): the app's service principal
//! gets the role `Application SMTP.SendAsApp` for a management scope of its addresses, and no
//! mailbox permission. `--per-mailbox` is the older way of the guides (§1.6): the Entra
//! permission SMTP.SendAsApp with admin consent, FullAccess and SendAs on the mailbox.

use super::{Access, Script, Spec, app_registration, connect_exchange, entra_done, object_id_step, opath, ps};

/// The spec's values as PowerShell literals; `sp` is `$sp` when the script asks for the Object ID.
struct Quoted {
    client: String,
    mailbox: String,
    sp: String,
    name: String,
}

/// The script for a mailbox.
pub(super) fn script(s: &mut Script, spec: &Spec, thumbprint: Option<&str>) {
    let access = spec.access.unwrap_or_default();
    header(s, spec, access);
    if spec.entra_done {
        entra_done(s, spec);
    } else {
        s.line("# Part 1: Entra admin center (https://entra.microsoft.com), as a Global or Application Administrator.");
        app_registration(s, spec, thumbprint);
        api_permission_step(s, spec, access);
        object_id_step(s, spec, 'd', "Exchange", None);
        s.line("#");
    }
    let sp = connect_exchange(s, spec, 'd');
    let q = Quoted {
        client: ps(&spec.client_id),
        mailbox: ps(spec.address()),
        sp,
        name: ps(&spec.display_name),
    };
    register_service_principal(s, &q);
    match access {
        Access::Rbac => management_scope(s, spec, &q),
        Access::PerMailbox => mailbox_permissions(s, &q),
    }
    send_as_permissions(s, spec, &q, access);
    enable_smtp_auth(s, &q);
    verification(s, spec, &q, access);
    closing(s, access);
}

/// The opening comment: who sends as what, in which tenant, how, and the sources of the how.
fn header(s: &mut Script, spec: &Spec, access: Access) {
    s.line(&format!(
        "# m365-mailer setup: {} sends through Exchange Online as app {}",
        spec.address(),
        spec.client_id
    ));
    match access {
        Access::Rbac => {
            s.line(&format!(
                "# in tenant {}, with RBAC for Applications (--per-mailbox: mailbox permissions instead).",
                spec.tenant
            ));
            s.comments(&[
                "",
                "RBAC for Applications covers SMTP since November 2025 (Microsoft 365 message center MC1158911,",
                "roadmap 498356): Exchange gives the app the role 'Application SMTP.SendAsApp' for a management scope",
                "of its addresses, and no mailbox permission is needed. The steps follow",
                "learn.microsoft.com/exchange/permissions-exo/application-rbac and",
                "learn.microsoft.com/exchange/client-developer/legacy-protocols/smtp-app-rbac-onboarding.",
            ]);
        }
        Access::PerMailbox => s.line(&format!(
            "# in tenant {}, with the SMTP.SendAsApp permission and mailbox permissions (--per-mailbox).",
            spec.tenant
        )),
    }
    s.line("#");
}

/// Step 1c: no permission with RBAC (and why), or SMTP.SendAsApp with admin consent.
fn api_permission_step(s: &mut Script, spec: &Spec, access: Access) {
    match access {
        Access::Rbac => s.comments(&[
            "  c. API permissions: add none. Microsoft's SMTP RBAC page (above) says: \"Refrain from adding any",
            "     permissions to your application, as this process does not require any claims. Including the",
            "     SMTP.SendAsApp claim would trigger an unnecessary check for mailbox permissions.\" An app that",
            "     already has SMTP.SendAsApp from an earlier setup: remove it there, or keep its mailbox permissions",
            "     (--per-mailbox). Its tokens then carry no roles claim; with RBAC that is expected.",
        ]),
        Access::PerMailbox => {
            s.line(
                "#   c. API permissions → Add a permission → APIs my organization uses → Office 365 Exchange Online →",
            );
            s.line("#      Application permissions → SMTP.SendAsApp → Add permissions, then \"Grant admin consent\".");
            s.line(&format!(
                "#      az ad app permission admin-consent --id {}",
                spec.client_id
            ));
        }
    }
}

/// `New-ServicePrincipal`: the app's pointer in Exchange.
fn register_service_principal(s: &mut Script, q: &Quoted) {
    let Quoted { client, sp, name, .. } = q;
    s.line("");
    s.line("# Register the app's service principal in Exchange. -ObjectId is the Enterprise application's Object ID;");
    s.line("# the App registration's Object ID here is the most common cause of 535 5.7.3.");
    s.line(&format!(
        "New-ServicePrincipal -AppId {client} -ObjectId {sp} -DisplayName {name}"
    ));
    s.line("");
}

/// The addresses of the management scope: the mailbox and every SendAs address.
fn scope_filter(spec: &Spec) -> String {
    std::iter::once(spec.address())
        .chain(spec.send_as.iter().map(String::as_str))
        .map(|a| format!("PrimarySmtpAddress -eq {}", opath(a)))
        .collect::<Vec<_>>()
        .join(" -or ")
}

/// RBAC for Applications: a management scope of the app's addresses and the SMTP role for it.
fn management_scope(s: &mut Script, spec: &Spec, q: &Quoted) {
    let sp = &q.sp;
    s.line("# RBAC for Applications: a management scope of the addresses the app sends as, and the role");
    s.line("# 'Application SMTP.SendAsApp' for that scope alone. (Another app needs other names for both.)");
    s.line(&format!(
        "New-ManagementScope -Name {} -RecipientRestrictionFilter {}",
        ps("m365-mailer scope"),
        ps(&scope_filter(spec))
    ));
    s.line(&format!(
        "New-ManagementRoleAssignment -Name {} -Role 'Application SMTP.SendAsApp' -App {sp} -CustomResourceScope {}",
        ps("m365-mailer SMTP"),
        ps("m365-mailer scope")
    ));
}

/// `--per-mailbox`: FullAccess and SendAs on the mailbox for the service principal.
fn mailbox_permissions(s: &mut Script, q: &Quoted) {
    let Quoted { mailbox, sp, .. } = q;
    s.line("# Let the service principal open the mailbox it authenticates as, and send as it (the guides grant");
    s.line("# both; FullAccess is what SMTP checks, SendAs keeps Send-As checks quiet).");
    s.line(&format!(
        "Add-MailboxPermission -Identity {mailbox} -User {sp} -AccessRights FullAccess -AutoMapping $false"
    ));
    s.line(&format!(
        "Add-RecipientPermission -Identity {mailbox} -Trustee {sp} -AccessRights SendAs -Confirm:$false"
    ));
}

/// SendAs on each other address the app sends as.
fn send_as_permissions(s: &mut Script, spec: &Spec, q: &Quoted, access: Access) {
    let sp = &q.sp;
    for other in &spec.send_as {
        s.line(&format!("# Send as {other} too (list it in allowed_senders as well)."));
        if access == Access::Rbac {
            s.line("# It is in the scope above; whether the scope alone lets the app send as it is not documented,");
            s.line("# so the SendAs grant makes sure.");
        }
        s.line(&format!(
            "Add-RecipientPermission -Identity {} -Trustee {sp} -AccessRights SendAs -Confirm:$false",
            ps(other)
        ));
    }
}

/// SMTP AUTH on for the mailbox (or the organisation): the gate applies to OAuth too.
fn enable_smtp_auth(s: &mut Script, q: &Quoted) {
    let mailbox = &q.mailbox;
    s.line("");
    s.line("# Turn SMTP AUTH on for this mailbox ($false means enabled). Security defaults in Entra ID must be off.");
    s.line(&format!(
        "Set-CASMailbox -Identity {mailbox} -SmtpClientAuthenticationDisabled $false"
    ));
    s.line("# Or for the whole organisation: Set-TransportConfig -SmtpClientAuthenticationDisabled $false");
    s.line("");
}

/// The commands that show what was set up.
fn verification(s: &mut Script, spec: &Spec, q: &Quoted, access: Access) {
    let Quoted {
        client, mailbox, sp, ..
    } = q;
    s.line("# Check:");
    s.line(&format!(
        "Get-ServicePrincipal | Where-Object AppId -eq {client} | Format-List DisplayName, AppId, ObjectId"
    ));
    match access {
        Access::Rbac => {
            s.line("# The row 'Application SMTP.SendAsApp' must show InScope True:");
            s.line(&format!(
                "Test-ServicePrincipalAuthorization -Identity {sp} -Resource {mailbox} | Format-Table"
            ));
            for other in &spec.send_as {
                s.line(&format!("Get-RecipientPermission -Identity {}", ps(other)));
            }
        }
        Access::PerMailbox => {
            s.line(&format!(
                "Get-MailboxPermission -Identity {mailbox} | Where-Object AccessRights -like '*FullAccess*'"
            ));
            s.line(&format!("Get-RecipientPermission -Identity {mailbox}"));
        }
    }
    s.line(&format!(
        "Get-CASMailbox -Identity {mailbox} | Format-List SmtpClientAuthenticationDisabled"
    ));
}

/// Part 3: wait for the changes to spread, then test with `doctor`.
fn closing(s: &mut Script, access: Access) {
    s.line("");
    match access {
        Access::Rbac => {
            s.line("# Part 3: changes take 5 to 15 minutes to reach every server, RBAC assignments longer (allow up");
            s.line("# to 2 hours). Then:");
        }
        Access::PerMailbox => s.line("# Part 3: changes take 5 to 15 minutes to reach every server. Then:"),
    }
    s.line("#   m365-mailer doctor --send-test <your address>");
}
