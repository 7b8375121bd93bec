//! `setup --service hve`: Exchange Online High Volume Email (fact sheet §8). An HVE account (a
//! mail user made with `New-MailUser -HVEAccount`), an app with the *Office 365 Exchange Online*
//! application permission Mail.Send (not SMTP.SendAsApp), and the app on the account's Allowed
//! Apps list (`Add-HVEAppAccess`, which takes the Enterprise application's Object ID, per its
//! Learn page). Internal recipients only.

use super::{
    Script, Spec, app_registration, connect_exchange, credential_config, entra_done, object_id_step, opath, ps, toml,
};

/// The script for an HVE account.
pub(super) fn script(s: &mut Script, spec: &Spec, thumbprint: Option<&str>) {
    header(s, spec);
    if spec.entra_done {
        entra_done(s, spec);
        let sp = connect_exchange(s, spec, 'd');
        exchange_steps(s, spec, &sp);
        settings(s, spec);
        return;
    }
    s.line("# Part 1: Entra admin center (https://entra.microsoft.com), as a Global or Application Administrator.");
    app_registration(s, spec, thumbprint);
    s.comments(&[
        "  c. API permissions → Add a permission → APIs my organization uses → Office 365 Exchange Online →",
        "     Application permissions → Mail.Send → Add permissions, then \"Grant admin consent\". HVE takes this",
        "     permission: NOT SMTP.SendAsApp, and not Microsoft Graph's Mail.Send. Which HVE accounts the app may",
        "     send as is each account's Allowed Apps list (Add-HVEAppAccess below).",
    ]);
    s.line(&format!(
        "#      az ad app permission admin-consent --id {}",
        spec.client_id
    ));
    object_id_step(
        s,
        spec,
        'd',
        "Add-HVEAppAccess",
        Some("Nor is it the Application (client) ID: Add-HVEAppAccess refuses anything but this Object ID."),
    );
    s.line("#");
    let sp = connect_exchange(s, spec, 'd');
    exchange_steps(s, spec, &sp);
    settings(s, spec);
}

/// The opening comment: the account, the app, the tenant, the rule and the sources.
fn header(s: &mut Script, spec: &Spec) {
    s.line(&format!(
        "# m365-mailer setup: the High Volume Email account {} sends as app {}",
        spec.address(),
        spec.client_id
    ));
    s.line(&format!("# in tenant {}.", spec.tenant));
    s.comments(&[
        "",
        "High Volume Email (HVE) delivers to recipients inside the tenant only (its accepted domains).",
        "Sources: learn.microsoft.com/exchange/mail-flow-best-practices/high-volume-mails-m365 (HVE),",
        "  learn.microsoft.com/exchange/mail-flow-best-practices/oauth-high-volume-mails-m365 (HVE with OAuth),",
        "  learn.microsoft.com/powershell/module/exchangepowershell/new-mailuser (-HVEAccount),",
        "  learn.microsoft.com/powershell/module/exchangepowershell/add-hveappaccess.",
        "",
    ]);
}

/// The HVE account, the app on its Allowed Apps list, and the check.
fn exchange_steps(s: &mut Script, spec: &Spec, sp: &str) {
    let mailbox = ps(spec.address());
    // The account's name: the address's local part (unique in the tenant as the address is).
    let name = spec
        .address()
        .rsplit_once('@')
        .map_or(spec.address(), |(local, _)| local);
    s.line("");
    s.comments(&[
        "The HVE account: a mail user for High Volume Email alone (skip this if it exists: Get-MailUser -HVEAccount).",
        "New-MailUser wants a password for it. m365-mailer does not use it (OAuth), but HVE still takes it for",
        "Basic auth (reported: until September 2028), so make it long and keep it safe.",
    ]);
    s.line(&format!(
        "New-MailUser -HVEAccount -Name {} -Password (Read-Host 'A password for the HVE account' -AsSecureString) -PrimarySmtpAddress {mailbox}",
        ps(name)
    ));
    s.line("");
    s.line("# Put the app on the HVE account's Allowed Apps list: at most 10 apps per HVE account; it takes up to");
    s.line("# 5 minutes to apply.");
    s.line(&format!("Add-HVEAppAccess -Identity {mailbox} -AppIds {sp}"));
    s.line("");
    s.line("# Check:");
    s.line(&format!(
        "Get-MailUser -HVEAccount -Filter {} | Format-List Name, PrimarySmtpAddress",
        ps(&format!("PrimarySmtpAddress -eq {}", opath(spec.address())))
    ));
}

/// Part 3: HVE's SMTP, its rules, and the account in m365-mailer's config file.
fn settings(s: &mut Script, spec: &Spec) {
    let domain = spec
        .address()
        .rsplit_once('@')
        .map_or(String::new(), |(_, d)| d.to_ascii_lowercase());
    s.line("");
    s.comments(&[
        "Part 3: m365-mailer. HVE's SMTP is smtp-hve.office365.com, port 587, STARTTLS, AUTH XOAUTH2 as the HVE",
        "  account with a token for https://outlook.office365.com/.default; service = \"hve\" sets all of it.",
        "  Third-party guides name smtp.hve.mx.microsoft as its newer name and call the old one deprecated (not on",
        "  Learn): if Microsoft moves you there, add smtp_host = \"smtp.hve.mx.microsoft\".",
        "HVE sends to internal recipients only: list every accepted domain of the tenant (Get-AcceptedDomain) in",
        "  internal_domains, and m365-mailer refuses other recipients before sending anything.",
        "HVE refuses a token close to its expiry (\"501 5.5.127 ... Token will expire soon\", reported about 10",
        "  minutes early): m365-mailer refreshes HVE tokens early and never presents one with less than 15 minutes left.",
        "In the config file:",
        "  [accounts.hve]",
        "  service = \"hve\"",
    ]);
    s.line(&format!("#   tenant = {}", toml(&spec.tenant)));
    s.line(&format!("#   client_id = {}", toml(&spec.client_id)));
    s.line(&format!("#   mailbox = {}", toml(spec.address())));
    s.line(&format!("#   {}", credential_config(spec)));
    s.line(&format!(
        "#   internal_domains = [{}]   # and the tenant's other accepted domains",
        toml(&domain)
    ));
    s.line("#");
    s.line("# Part 4: once Add-HVEAppAccess has applied (up to 5 minutes):");
    s.line("#   m365-mailer doctor --send-test <an address inside the tenant>");
}
