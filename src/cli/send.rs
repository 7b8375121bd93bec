//! `send`: read or compose the message, check the From address against the account, get a token,
//! and submit.

use std::io::Read as _;

use super::args::SendArgs;
use super::exit::{Code, Failure};
use crate::account::Account;
use crate::catalog::{Evidence, Ids};
use crate::config::Config;
use crate::message::{self, Compose, Outgoing, RawOptions};
use crate::oauth::DiskCache;
use crate::oauth::inspect;
use crate::submit::{Options, Submitter};

pub(super) async fn run(args: &SendArgs) -> Result<(), Failure> {
    if let Some(option) = args.recipients.iter().find(|r| r.starts_with('-')) {
        // sendmail's rule: options end at the first recipient. What follows is a recipient, and
        // no address starts with `-`.
        return Err(Failure::new(
            Code::Usage,
            format!(
                "`{}` follows a recipient, so it is taken as one, and an address cannot start with `-`: give options before the recipients",
                option.escape_debug()
            ),
        ));
    }
    let config = Config::resolve(&args.account.overrides())?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let account = config.account;
    let outgoing = prepare(args, &account)?;
    if !args.no_from_check {
        check_senders(&account, &outgoing)?;
    }
    if args.dry_run {
        super::print_dry_run(&outgoing);
        return Ok(());
    }
    let options = Options {
        disk_cache: if args.no_token_cache {
            None
        } else {
            DiskCache::default_location()
        },
        keep_transcript: args.verbose,
        ..Options::default()
    };
    let submitter = Submitter::new(account, &options)?;
    let attempt = submitter.submit(&outgoing).await;
    for line in &attempt.transcript {
        eprintln!("{line}");
    }
    let delivery = match attempt.outcome {
        Ok(delivery) => delivery,
        Err(error) => return Err(explained(&submitter, &outgoing, &error)),
    };
    for (recipient, reply) in &delivery.rejected {
        eprintln!("m365-mailer: {recipient} was refused: {reply}");
    }
    if args.verbose {
        eprintln!("m365-mailer: accepted: {}", delivery.reply);
    }
    if delivery.rejected.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(
            Code::Unavailable,
            "some recipients were refused; the others will get the message",
        ))
    }
}

/// The failure with the catalog's causes, narrowed by the token that was used.
fn explained(submitter: &Submitter, outgoing: &Outgoing, error: &crate::submit::SubmitError) -> Failure {
    let account = submitter.account();
    let mut evidence = Evidence::of(account);
    let mut ids = Ids::of(account);
    ids.from = outgoing
        .from_header
        .first()
        .cloned()
        .or_else(|| Some(outgoing.envelope.from.clone()));
    if let Some(token) = submitter.provider().and_then(|p| p.current())
        && let Some((_, claims)) = inspect::decode(token.token.expose())
    {
        ids.sp_id = claims["oid"].as_str().map(str::to_owned);
        evidence.claims = Some(claims);
    }
    super::exit::submit_failure(error, &evidence, &ids)
}

/// The message from flags (when any composing flag is given) or from standard input.
fn prepare(args: &SendArgs, account: &Account) -> Result<Outgoing, Failure> {
    let composing = args.subject.is_some()
        || args.body.is_some()
        || args.body_file.is_some()
        || args.html.is_some()
        || !args.attachments.is_empty();
    if composing {
        let text = match (&args.body, &args.body_file, &args.html) {
            (Some(body), _, _) => Some(body.clone()),
            (None, Some(path), _) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| Failure::new(Code::Usage, format!("cannot read {}: {e}", path.display())))?,
            ),
            (None, None, Some(_)) => None,
            (None, None, None) if std::io::IsTerminal::is_terminal(&std::io::stdin()) => Some(String::new()),
            (None, None, None) => Some(String::from_utf8_lossy(&read_stdin()?).into_owned()),
        };
        let mut to = args.to.clone();
        to.extend(args.recipients.iter().cloned());
        let spec = Compose {
            from: args.from.clone().unwrap_or_else(|| account.default_from.clone()),
            from_name: args.full_name.clone(),
            to,
            cc: args.cc.clone(),
            bcc: args.bcc.clone(),
            subject: args.subject.clone(),
            text,
            html: args.html.clone(),
            attachments: args.attachments.clone(),
            headers: args.headers.clone(),
            envelope_from: args.envelope_from.clone(),
        };
        return Ok(message::compose(&spec)?);
    }
    if let Some(v) = args.headers.first() {
        return Err(Failure::new(
            Code::Usage,
            format!("--header `{v}` applies to composed messages (with --subject or --body)"),
        ));
    }
    let raw = read_stdin()?;
    let mut recipients = args.recipients.clone();
    recipients.extend(args.to.iter().chain(&args.cc).chain(&args.bcc).cloned());
    let options = RawOptions {
        recipients,
        recipients_from_headers: args.recipients_from_headers,
        envelope_from: args.envelope_from.clone(),
        full_name: args.full_name.clone(),
        default_from: args.from.clone().unwrap_or_else(|| account.default_from.clone()),
    };
    Ok(message::from_raw(&raw, &options)?)
}

fn read_stdin() -> Result<Vec<u8>, Failure> {
    let mut raw = Vec::new();
    std::io::stdin()
        .read_to_end(&mut raw)
        .map_err(|e| Failure::new(Code::Software, format!("cannot read standard input: {e}")))?;
    Ok(raw)
}

/// Exchange refuses a From or envelope sender the account may not send as (SendAsDenied), but
/// only after the whole message has been sent; refuse before connecting, with the fix.
pub(super) fn check_senders(account: &Account, outgoing: &Outgoing) -> Result<(), Failure> {
    let senders = outgoing
        .from_header
        .iter()
        .chain(std::iter::once(&outgoing.envelope.from));
    let Some(denied) = senders.filter(|s| !s.is_empty()).find(|s| !account.may_send_as(s)) else {
        return Ok(());
    };
    // The address is quoted for PowerShell: it came from the message or a flag.
    let identity = crate::powershell::quote(denied).unwrap_or_else(|_| "'<address>'".to_owned());
    Err(Failure::new(
        Code::NoPerm,
        format!(
            "the account may not send as {shown}: Exchange Online would refuse it with 554 5.2.252 SendAsDenied.\n  \
             The account authenticates as {mailbox}. To send as {shown}, grant the app SendAs on it:\n    \
             Add-RecipientPermission -Identity {identity} -Trustee <service principal object id> -AccessRights SendAs\n  \
             then add \"{shown}\" to allowed_senders of account `{name}`. Or send as {mailbox}. \
             (--no-from-check sends anyway.)",
            shown = denied.escape_debug(),
            mailbox = account.mailbox.value,
            name = account.name,
        ),
    ))
}
