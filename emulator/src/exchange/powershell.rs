//! The Exchange Online PowerShell cmdlets of a setup script, applied to the scenario: what an
//! administrator runs after `Connect-ExchangeOnline`, so a script `setup` prints can be applied
//! offline (`POST /_emulator/exchange-powershell`) and its effect checked by the SMTP endpoint.
//!
//! The language is the part such scripts use: one command per line, `#` comments, parameters
//! `-Name value` or `-Name:value`, single-quoted strings (`''` is a quote), double-quoted
//! strings without `$` expansion, `$true`/`$false`, and pipelines whose first command is a
//! `Get-` or `Test-` cmdlet (read-only, answered with a short listing). Anything else (a
//! variable, `Read-Host`, a cmdlet not listed here) stops the script at its line, with the
//! changes of the lines before it kept, as `-ErrorAction Stop` would.
//!
//! Cmdlets that change the tenant: `New-ServicePrincipal`, `New-ManagementScope` (a
//! `RecipientRestrictionFilter` of `PrimarySmtpAddress -eq '…'` joined by `-or`; scopes live
//! for the script's run, as the emulator keeps assignments with their addresses),
//! `New-ManagementRoleAssignment -App … -CustomResourceScope …`, `Add-MailboxPermission
//! -AccessRights FullAccess`, `Add-RecipientPermission -AccessRights SendAs`, `Set-CASMailbox
//! -SmtpClientAuthenticationDisabled`, `Set-TransportConfig -SmtpClientAuthenticationDisabled`,
//! `Add-HVEAppAccess`. Exchange's errors for duplicates and unknown objects are kept.

use std::collections::HashMap;

use crate::model::{ExchangeServicePrincipal, ManagementRoleAssignment, Scenario, Tenant};

/// Why the script stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ScriptError {
    /// 1-based line of the script.
    pub line: usize,
    /// What Exchange (or the emulator) says.
    pub message: String,
}

/// Runs `script` against `scenario`; the answer is what the read-only commands printed.
pub(crate) fn run(scenario: &mut Scenario, script: &str) -> Result<String, ScriptError> {
    let mut run = Run {
        tenant: None,
        scopes: HashMap::new(),
        output: String::new(),
    };
    for (index, text) in script.lines().enumerate() {
        let fail = |message: String| ScriptError {
            line: index + 1,
            message,
        };
        let line = text.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let pipeline = split_pipeline(line).map_err(fail)?;
        let command = Command::parse(pipeline[0]).map_err(fail)?;
        run.apply(scenario, &command, pipeline.len() > 1).map_err(fail)?;
    }
    Ok(run.output)
}

/// One command: the cmdlet and its parameters (name lower-cased, value; a switch has `None`).
#[derive(Debug)]
struct Command {
    cmdlet: String,
    parameters: Vec<(String, Option<String>)>,
    positional: Vec<String>,
}

impl Command {
    fn parse(text: &str) -> Result<Self, String> {
        let tokens = tokens(text)?;
        let Some((Token::Word(cmdlet), rest)) = tokens.split_first() else {
            return Err(format!("`{text}` does not start with a cmdlet"));
        };
        if cmdlet.starts_with('$') {
            return Err("variables are not supported by the emulator: write the value itself".to_owned());
        }
        let mut command = Command {
            cmdlet: cmdlet.to_ascii_lowercase(),
            parameters: Vec::new(),
            positional: Vec::new(),
        };
        let mut rest = rest.iter().peekable();
        while let Some(token) = rest.next() {
            let value = match token {
                Token::Word(w)
                    if w.starts_with('-') && w.len() > 1 && !w[1..].starts_with(|c: char| c.is_ascii_digit()) =>
                {
                    let (name, inline) = match w[1..].split_once(':') {
                        Some((name, value)) => (name, Some(value.to_owned())),
                        None => (&w[1..], None),
                    };
                    let value = match inline {
                        Some(v) => Some(scalar(&v)?),
                        None => match rest.peek() {
                            Some(Token::Quoted(_)) => rest.next().map(Token::text).transpose()?,
                            Some(Token::Word(next)) if !next.starts_with('-') => {
                                rest.next().map(Token::text).transpose()?
                            }
                            _ => None,
                        },
                    };
                    command.parameters.push((name.to_ascii_lowercase(), value));
                    continue;
                }
                other => other.text()?,
            };
            command.positional.push(value);
        }
        Ok(command)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    fn required(&self, name: &str) -> Result<&str, String> {
        self.get(name)
            .ok_or_else(|| format!("{}: the parameter -{name} is required here", self.cmdlet))
    }

    fn flag(&self, name: &str) -> Result<bool, String> {
        match self.required(name)? {
            "$true" => Ok(true),
            "$false" => Ok(false),
            other => Err(format!("-{name} takes $true or $false, not `{other}`")),
        }
    }
}

#[derive(Debug)]
enum Token {
    Word(String),
    Quoted(String),
}

impl Token {
    /// The value: a quoted string as written, a bare word unless it is an expression.
    fn text(&self) -> Result<String, String> {
        match self {
            Token::Quoted(s) => Ok(s.clone()),
            Token::Word(w) => scalar(w),
        }
    }
}

/// A bare value: `$true`, `$false`, or a word without `$`, `(` or `@`.
fn scalar(word: &str) -> Result<String, String> {
    match word {
        "$true" | "$false" => Ok(word.to_owned()),
        w if w.contains(['$', '(', ')', '@', '{', '}']) => Err(format!(
            "`{w}`: expressions and variables are not supported by the emulator: write the value itself"
        )),
        w => Ok(w.to_owned()),
    }
}

/// Splits a line at the `|` outside quotes.
fn split_pipeline(line: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut quote = None;
    let mut start = 0;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '|') => {
                parts.push(line[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if quote.is_some() {
        return Err("a string is not closed".to_owned());
    }
    parts.push(line[start..].trim());
    Ok(parts)
}

/// The tokens of one command.
fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '\'' || c == '"' {
            chars.next();
            let mut value = String::new();
            loop {
                match chars.next() {
                    None => return Err("a string is not closed".to_owned()),
                    Some(q) if q == c && chars.peek() == Some(&c) => {
                        chars.next();
                        value.push(c);
                    }
                    Some(q) if q == c => break,
                    Some('$') if c == '"' => {
                        return Err("`$` in a double-quoted string would expand: use single quotes".to_owned());
                    }
                    Some(other) => value.push(other),
                }
            }
            tokens.push(Token::Quoted(value));
            continue;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            word.push(c);
            chars.next();
        }
        // `a,b` lists of Format-List are read-only: kept as one word.
        tokens.push(Token::Word(word.trim_end_matches(',').to_owned()));
    }
    Ok(tokens)
}

struct Run {
    /// Index of the connected tenant.
    tenant: Option<usize>,
    /// Management scopes made by this run: name (lower case) → addresses.
    scopes: HashMap<String, Vec<String>>,
    output: String,
}

impl Run {
    fn apply(&mut self, scenario: &mut Scenario, command: &Command, piped: bool) -> Result<(), String> {
        if command.cmdlet == "connect-exchangeonline" {
            let organization = command.required("organization")?;
            let index = scenario
                .tenants
                .iter()
                .position(|t| t.answers_to(organization))
                .ok_or_else(|| format!("Connect-ExchangeOnline: no organization `{organization}`"))?;
            self.tenant = Some(index);
            return Ok(());
        }
        let index = self
            .tenant
            .ok_or("Connect-ExchangeOnline must come first: no organization is connected")?;
        let tenant = &mut scenario.tenants[index];
        if command.cmdlet.starts_with("get-") || command.cmdlet.starts_with("test-") {
            let listing = read(tenant, command)?;
            self.output.push_str(&listing);
            return Ok(());
        }
        if piped {
            return Err(format!(
                "{}: a pipeline after a command that changes something is not supported",
                command.cmdlet
            ));
        }
        match command.cmdlet.as_str() {
            "new-serviceprincipal" => new_service_principal(tenant, command),
            "new-managementscope" => {
                let name = command.required("name")?.to_ascii_lowercase();
                if self.scopes.contains_key(&name) {
                    return Err(format!("The management scope \"{name}\" already exists."));
                }
                let addresses = scope_addresses(command.required("recipientrestrictionfilter")?)?;
                self.scopes.insert(name, addresses);
                Ok(())
            }
            "new-managementroleassignment" => {
                let app = command.required("app")?;
                let role = command.required("role")?;
                let scope = command.required("customresourcescope")?.to_ascii_lowercase();
                let mailboxes = self
                    .scopes
                    .get(&scope)
                    .ok_or_else(|| format!("The management scope \"{scope}\" couldn't be found."))?;
                if tenant.exchange_service_principal_named(app).is_none() {
                    return Err(format!(
                        "The operation couldn't be performed because object '{app}' couldn't be found."
                    ));
                }
                let mut assignment = ManagementRoleAssignment::new(app, role, &[]);
                assignment.mailboxes = mailboxes.clone();
                tenant.management_role_assignments.push(assignment);
                Ok(())
            }
            "add-mailboxpermission" => {
                rights(command, "FullAccess")?;
                let user = command.required("user")?.to_owned();
                let mailbox = mailbox(tenant, command.required("identity")?)?;
                if !mailbox.full_access.iter().any(|t| t.eq_ignore_ascii_case(&user)) {
                    mailbox.full_access.push(user);
                }
                Ok(())
            }
            "add-recipientpermission" => {
                rights(command, "SendAs")?;
                let trustee = command.required("trustee")?.to_owned();
                let mailbox = mailbox(tenant, command.required("identity")?)?;
                if !mailbox.send_as.iter().any(|t| t.eq_ignore_ascii_case(&trustee)) {
                    mailbox.send_as.push(trustee);
                }
                Ok(())
            }
            "set-casmailbox" => {
                let disabled = command.flag("smtpclientauthenticationdisabled")?;
                mailbox(tenant, command.required("identity")?)?.smtp_client_authentication_disabled = Some(disabled);
                Ok(())
            }
            "set-transportconfig" => {
                tenant.smtp_client_authentication_disabled = command.flag("smtpclientauthenticationdisabled")?;
                Ok(())
            }
            "add-hveappaccess" => {
                let identity = command.required("identity")?;
                let app = command.required("appids")?.to_owned();
                let account = tenant
                    .hve_accounts
                    .iter_mut()
                    .find(|a| a.address.eq_ignore_ascii_case(identity))
                    .ok_or_else(|| not_found(identity))?;
                if !account.apps.iter().any(|a| a.eq_ignore_ascii_case(&app)) {
                    account.apps.push(app);
                }
                Ok(())
            }
            other => Err(format!("the emulator does not know the cmdlet `{other}`")),
        }
    }
}

fn not_found(identity: &str) -> String {
    format!(
        "Couldn't find object \"{identity}\". Please make sure that it was spelled correctly or specify a different object."
    )
}

fn mailbox<'a>(tenant: &'a mut Tenant, identity: &str) -> Result<&'a mut crate::model::Mailbox, String> {
    tenant
        .mailboxes
        .iter_mut()
        .find(|m| m.address.eq_ignore_ascii_case(identity))
        .ok_or_else(|| not_found(identity))
}

fn rights(command: &Command, wanted: &str) -> Result<(), String> {
    let given = command.required("accessrights")?;
    if given.eq_ignore_ascii_case(wanted) {
        Ok(())
    } else {
        Err(format!(
            "{}: only -AccessRights {wanted} is modelled, not `{given}`",
            command.cmdlet
        ))
    }
}

fn new_service_principal(tenant: &mut Tenant, command: &Command) -> Result<(), String> {
    let app_id = command.required("appid")?.to_owned();
    let object_id = command
        .get("objectid")
        .or_else(|| command.get("serviceid"))
        .ok_or("New-ServicePrincipal: the parameter -ObjectId is required here")?
        .to_owned();
    if tenant
        .exchange_service_principals
        .iter()
        .any(|sp| sp.app_id.eq_ignore_ascii_case(&app_id) || sp.object_id.eq_ignore_ascii_case(&object_id))
    {
        return Err(format!(
            "A service principal with AppId {app_id} or ObjectId {object_id} already exists."
        ));
    }
    tenant.exchange_service_principals.push(ExchangeServicePrincipal {
        app_id,
        object_id,
        display_name: command.get("displayname").map(str::to_owned),
    });
    Ok(())
}

/// `PrimarySmtpAddress -eq '…'` terms joined by `-or`: their addresses.
fn scope_addresses(filter: &str) -> Result<Vec<String>, String> {
    let unsupported = || {
        format!(
            "RecipientRestrictionFilter `{filter}`: the emulator reads only PrimarySmtpAddress -eq '…' joined by -or"
        )
    };
    filter
        .split(" -or ")
        .map(|term| {
            let value = term
                .trim()
                .strip_prefix("PrimarySmtpAddress -eq ")
                .ok_or_else(unsupported)?;
            let inner = value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .ok_or_else(unsupported)?;
            Ok(inner.replace("''", "'"))
        })
        .collect()
}

/// The answer of a read-only command: the objects it names, one per line.
fn read(tenant: &Tenant, command: &Command) -> Result<String, String> {
    match command.cmdlet.as_str() {
        "get-serviceprincipal" => Ok(tenant
            .exchange_service_principals
            .iter()
            .map(|sp| {
                format!(
                    "DisplayName: {}  AppId: {}  ObjectId: {}\n",
                    sp.display_name.as_deref().unwrap_or_default(),
                    sp.app_id,
                    sp.object_id
                )
            })
            .collect()),
        "test-serviceprincipalauthorization" => {
            let identity = command.required("identity")?;
            let resource = command.required("resource")?;
            let sp = tenant
                .exchange_service_principal_named(identity)
                .ok_or_else(|| not_found(identity))?;
            Ok(tenant
                .management_role_assignments
                .iter()
                .filter(|a| sp.answers_to(&a.app))
                .map(|a| format!("RoleName: {}  InScope: {}\n", a.role, a.scope_contains(resource)))
                .collect())
        }
        "get-casmailbox" => {
            let identity = command.required("identity")?;
            let m = tenant.mailbox_by_address(identity).ok_or_else(|| not_found(identity))?;
            let value = m
                .smtp_client_authentication_disabled
                .map_or("$null".to_owned(), |d| if d { "True" } else { "False" }.to_owned());
            Ok(format!("SmtpClientAuthenticationDisabled: {value}\n"))
        }
        "get-mailboxpermission" | "get-recipientpermission" => {
            let identity = command.required("identity")?;
            let m = tenant.mailbox_by_address(identity).ok_or_else(|| not_found(identity))?;
            let (right, trustees) = if command.cmdlet == "get-mailboxpermission" {
                ("FullAccess", &m.full_access)
            } else {
                ("SendAs", &m.send_as)
            };
            Ok(trustees.iter().map(|t| format!("{t}  {right}\n")).collect())
        }
        // Other reads (Get-MailUser, Get-AcceptedDomain, …) change nothing and show nothing here.
        _ => Ok(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{CLIENT, MAILBOX, SERVICE_PRINCIPAL as SP_OBJECT};

    fn scenario() -> Scenario {
        let mut scenario = crate::fixture::contoso("secret", None);
        let tenant = &mut scenario.tenants[0];
        tenant.exchange_service_principals.clear();
        tenant.management_role_assignments.clear();
        for m in &mut tenant.mailboxes {
            m.full_access.clear();
        }
        scenario
    }

    #[test]
    fn an_rbac_script_registers_the_app_and_scopes_its_role() {
        let mut scenario = scenario();
        let script = format!(
            "# comment\nConnect-ExchangeOnline -Organization 'contoso.onmicrosoft.com'\n\
             New-ServicePrincipal -AppId '{CLIENT}' -ObjectId '{SP_OBJECT}' -DisplayName 'm365-mailer'\n\
             New-ManagementScope -Name 'm365-mailer scope' -RecipientRestrictionFilter 'PrimarySmtpAddress -eq ''{MAILBOX}'''\n\
             New-ManagementRoleAssignment -Name 'm365-mailer SMTP' -Role 'Application SMTP.SendAsApp' -App '{SP_OBJECT}' -CustomResourceScope 'm365-mailer scope'\n\
             Set-CASMailbox -Identity '{MAILBOX}' -SmtpClientAuthenticationDisabled $false\n\
             Test-ServicePrincipalAuthorization -Identity '{SP_OBJECT}' -Resource '{MAILBOX}' | Format-Table\n"
        );
        let output = run(&mut scenario, &script).unwrap();
        assert!(output.contains("Application SMTP.SendAsApp  InScope: true"), "{output}");
        let tenant = &scenario.tenants[0];
        assert_eq!(
            tenant.management_role_assignments[0].mailboxes,
            vec![MAILBOX.to_owned()]
        );
        assert!(tenant.exchange_registration(CLIENT, SP_OBJECT).is_some());
        // Run again: Exchange refuses the duplicate at its line, and nothing before it changed twice.
        let again = run(&mut scenario, &script).unwrap_err();
        assert_eq!(again.line, 3, "{again}");
        assert_eq!(scenario.tenants[0].exchange_service_principals.len(), 1);
    }

    #[test]
    fn what_the_emulator_cannot_run_stops_the_script_at_its_line() {
        let mut scenario = scenario();
        let connect = "Connect-ExchangeOnline -Organization 'contoso.onmicrosoft.com'\n";
        for (script, line, says) in [
            (
                "New-ServicePrincipal -AppId 'x' -ObjectId 'y'",
                1,
                "Connect-ExchangeOnline must come first",
            ),
            (&format!("{connect}$sp = Read-Host 'Object ID'"), 2, "variables"),
            (&format!("{connect}Remove-Mailbox -Identity 'x'"), 2, "does not know"),
            (
                &format!(
                    "{connect}Set-CASMailbox -Identity 'nobody@contoso.com' -SmtpClientAuthenticationDisabled $false"
                ),
                2,
                "Couldn't find object",
            ),
            (
                &format!("{connect}New-ManagementScope -Name 's' -RecipientRestrictionFilter 'Department -eq ''x'''"),
                2,
                "PrimarySmtpAddress",
            ),
            (
                &format!("{connect}Set-CASMailbox -Identity \"$mailbox\""),
                2,
                "single quotes",
            ),
            (&format!("{connect}Set-CASMailbox -Identity 'open"), 2, "not closed"),
        ] {
            let error = run(&mut scenario, script).unwrap_err();
            assert_eq!(error.line, line, "{script}: {error}");
            assert!(error.message.contains(says), "{script}: {error}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// A script of arbitrary text: never a panic; a failure names a line of it.
        #[test]
        fn an_arbitrary_script_stops_at_one_of_its_lines(script in ".{0,200}") {
            let mut scenario = scenario();
            if let Err(e) = run(&mut scenario, &script) {
                proptest::prop_assert!(e.line >= 1 && e.line <= script.lines().count().max(1), "{e}");
            }
        }

        /// Any value single-quoted as PowerShell quotes it (`'` doubled) reads back as itself.
        #[test]
        fn a_quoted_value_reads_back_as_written(value in "[^\\r\\n]{0,40}") {
            let mut scenario = scenario();
            let quoted = format!("'{}'", value.replace('\'', "''"));
            let script = format!(
                "Connect-ExchangeOnline -Organization 'contoso.com'\nSet-CASMailbox -Identity {quoted} -SmtpClientAuthenticationDisabled $false"
            );
            match run(&mut scenario, &script) {
                Ok(_) => proptest::prop_assert!(scenario.tenants[0].mailbox_by_address(&value).is_some()),
                Err(e) => proptest::prop_assert!(e.message.contains(&format!("\"{value}\"")), "{e}"),
            }
        }
    }
}
