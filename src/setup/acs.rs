//! `setup --service acs`: Azure Communication Services Email over SMTP (fact sheet §8): a
//! verified domain linked to the Communication Services resource, a MailFrom address, an Entra
//! app with a client secret, its Azure role on the resource, and an SMTP Username resource that
//! links tenant and app to the user name SMTP authenticates with. The Azure ids the user did not
//! give are asked for when the script runs; the config lines show a marked placeholder instead.

use super::{Script, Spec, app_registration, credential_config, ps, toml};

/// The SMTP Username resource's name is `--display-name`; the user name SMTP sends is another.
pub(super) fn script(s: &mut Script, spec: &Spec, thumbprint: Option<&str>) {
    header(s, spec);
    variables(s, spec);
    email_side(s, spec);
    s.line("# Part 2: Entra admin center (https://entra.microsoft.com), as a Global or Application Administrator.");
    app_registration(s, spec, thumbprint);
    if spec.certificate.is_none() {
        s.line("#      That Value is the SMTP password (AUTH LOGIN).");
    }
    s.line("#   c. API permissions: none. ACS authorises the app with an Azure role on its resource (Part 3).");
    s.line("#");
    role(s);
    smtp_username(s, spec);
    settings(s, spec);
}

/// The opening comment: sender, app, tenant, sources, where to run it.
fn header(s: &mut Script, spec: &Spec) {
    s.line(&format!(
        "# m365-mailer setup: Azure Communication Services Email sends as {} with app {}",
        spec.mailbox
            .as_deref()
            .unwrap_or("<the MailFrom address: not given, --sender>"),
        spec.client_id
    ));
    s.line(&format!("# in tenant {}.", spec.tenant));
    s.comments(&[
        "",
        "Source: learn.microsoft.com/azure/communication-services/quickstarts/email/send-email-smtp/smtp-authentication",
        "  (the role, the SMTP Username, smtp.azurecomm.net; the default quota).",
        "Run it in Azure Cloud Shell (PowerShell), or in PowerShell with the Azure CLI signed in (az login).",
        "",
    ]);
}

/// One variable: the literal given, or a prompt naming the flag that would have given it.
fn variable(s: &mut Script, name: &str, given: Option<&str>, prompt: &str, flag: &str) {
    match given {
        Some(value) => s.line(&format!("${name} = {}", ps(value))),
        None => s.line(&format!("${name} = Read-Host {}   # not given: {flag}", ps(prompt))),
    }
}

/// The ids every later command uses.
fn variables(s: &mut Script, spec: &Spec) {
    let ids = &spec.acs;
    s.line("# The ids: those given on the command line, the others asked for when the script runs.");
    variable(
        s,
        "subscription",
        ids.subscription.as_deref(),
        "Subscription ID of the Communication Services resource",
        "--subscription",
    );
    variable(
        s,
        "resourceGroup",
        ids.resource_group.as_deref(),
        "Resource group of the Communication Services resource",
        "--resource-group",
    );
    variable(
        s,
        "acsResource",
        ids.resource.as_deref(),
        "Name of the Communication Services resource",
        "--acs-resource",
    );
    variable(
        s,
        "smtpUsername",
        ids.smtp_username.as_deref(),
        "SMTP username to create (free-form, or an address on a linked domain)",
        "--smtp-username",
    );
    s.line(&format!("$clientId = {}", ps(&spec.client_id)));
    if uuid::Uuid::try_parse(&spec.tenant).is_ok() {
        s.line(&format!("$tenantId = {}", ps(&spec.tenant)));
    } else {
        s.line("# --tenant is a domain; the SMTP Username needs the tenant's GUID: the one az is signed in to.");
        s.line("$tenantId = az account show --query tenantId --output tsv");
    }
    s.line("");
}

/// Part 1, the portal: domain, MailFrom address, link.
fn email_side(s: &mut Script, spec: &Spec) {
    let sender = spec
        .mailbox
        .as_deref()
        .unwrap_or("<the MailFrom address: not given, --sender>");
    s.comments(&[
        "Part 1: Azure portal (https://portal.azure.com): the email side, where it is not there yet.",
        "  a. An Email Communication Services resource → Provision domains: an Azure managed domain, or your own",
        "     domain, verified with the DNS records the portal shows (TXT, then SPF and DKIM).",
        "  b. The domain → MailFrom addresses: the sender address must be one of them (an Azure managed domain",
    ]);
    s.line(&format!("#      has DoNotReply@…). The sender here: {sender}."));
    s.comments(&[
        "  c. The Communication Services resource → Email → Domains → Connect domain: link the verified domain.",
        "",
    ]);
}

/// Part 3: the app's Azure role on the Communication Services resource.
fn role(s: &mut Script) {
    s.line("# Part 3: the app's role on the Communication Services resource (as an Owner or User Access");
    s.line("# Administrator of it).");
    s.line("$scope = \"/subscriptions/$subscription/resourceGroups/$resourceGroup/providers/Microsoft.Communication/communicationServices/$acsResource\"");
    s.line(
        "az role assignment create --assignee $clientId --role 'Communication and Email Service Owner' --scope $scope",
    );
    s.comments(&[
        "Or, least privilege: a custom role with only Microsoft.Communication/CommunicationServices/Read,",
        "  Microsoft.Communication/CommunicationServices/Write and Microsoft.Communication/EmailServices/write,",
        "  assigned the same way (--role '<its name>').",
    ]);
    s.line("");
}

/// Part 4: the SMTP Username resource, in the portal or with the Azure CLI, and the checks.
fn smtp_username(s: &mut Script, spec: &Spec) {
    let resource = ps(&spec.display_name);
    s.comments(&[
        "Part 4: the SMTP Username: it links the tenant and the app to the user name SMTP authenticates with.",
        "  Portal: the Communication Services resource → SMTP Usernames → Add: the app, then the user name",
        "  (free-form, or an address on a linked domain).",
        "  Azure CLI: `az communication smtp-username` is in the Azure CLI's reference, not on the ACS SMTP page;",
        "  an older CLI may lack it (az upgrade), and `--help` shows its parameters.",
    ]);
    s.line(&format!(
        "az communication smtp-username create --subscription $subscription --resource-group $resourceGroup --comm-service-name $acsResource --smtp-username {resource} --username $smtpUsername --entra-application-id $clientId --tenant-id $tenantId"
    ));
    s.line("");
    s.line("# Check:");
    s.line("az role assignment list --assignee $clientId --scope $scope --output table");
    s.line(&format!(
        "az communication smtp-username show --subscription $subscription --resource-group $resourceGroup --comm-service-name $acsResource --smtp-username {resource}"
    ));
}

/// Part 5: ACS's SMTP, its quota, and the account in m365-mailer's config file.
fn settings(s: &mut Script, spec: &Spec) {
    let sender = spec
        .mailbox
        .as_deref()
        .map_or_else(|| "\"<the MailFrom address>\"".to_owned(), toml);
    let username = spec
        .acs
        .smtp_username
        .as_deref()
        .map_or_else(|| "\"<the SMTP username>\"".to_owned(), toml);
    s.line("");
    s.comments(&[
        "Part 5: m365-mailer. ACS's SMTP is smtp.azurecomm.net, port 587, STARTTLS, AUTH LOGIN with the SMTP",
        "  username and the client secret's Value as the password; service = \"acs\" sets host and port. (With a",
        "  certificate, m365-mailer uses ACS's XOAUTH2 form: a token for https://communication.azure.com/.default.)",
        "ACS's default quota: 30 mails a minute and 100 an hour; more by a support request to Azure.",
        "In the config file:",
        "  [accounts.acs]",
        "  service = \"acs\"",
    ]);
    s.line(&format!("#   tenant = {}", toml(&spec.tenant)));
    s.line(&format!("#   client_id = {}", toml(&spec.client_id)));
    s.line(&format!(
        "#   mailbox = {sender}   # the MailFrom address: ACS has no mailbox, m365-mailer needs the field"
    ));
    s.line(&format!("#   from = {sender}"));
    s.line(&format!("#   smtp_username = {username}"));
    s.line(&format!("#   {}", credential_config(spec)));
    s.line("#");
    s.line("# Part 6: a new role assignment can take some minutes to apply. Then:");
    s.line("#   m365-mailer doctor --send-test <your address>");
}
