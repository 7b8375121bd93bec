//! `token`: get a token (or read one) and show its header and claims with guide 001's checks.
//! The token itself is printed only with `--raw`.

use std::io::Read as _;

use super::args::TokenArgs;
use super::exit::{Code, Failure};
use crate::clock::Timestamp;
use crate::config::Config;
use crate::doctor;
use crate::oauth::{DiskCache, inspect};
use crate::submit::{Options, Submitter};

pub(super) async fn run(args: &TokenArgs) -> Result<(), Failure> {
    let config = Config::resolve(&args.account.overrides());
    let token = match &args.from_file {
        Some(path) => read_token(path)?,
        None => {
            let config = config.as_ref().map_err(|e| Failure::new(Code::Config, e.to_string()))?;
            let options = Options {
                disk_cache: if args.no_token_cache {
                    None
                } else {
                    DiskCache::default_location()
                },
                ..Options::default()
            };
            let submitter = Submitter::new(config.account.clone(), &options)?;
            let Some(provider) = submitter.provider() else {
                return Err(Failure::new(
                    Code::Config,
                    "this account uses a password, not OAuth: there is no token",
                ));
            };
            provider
                .token()
                .await
                .map_err(|e| Failure::from(crate::submit::SubmitError::from(e)))?
                .token
                .expose()
                .to_owned()
        }
    };
    if args.raw {
        println!("{token}");
        return Ok(());
    }
    let Some((header, claims)) = inspect::decode(&token) else {
        println!("The token is opaque (not a JWT): nothing to show. --raw prints it.");
        return Ok(());
    };
    let checks = match &config {
        Ok(c) => doctor::claim_checks(&c.account, &claims),
        Err(_) => Vec::new(),
    };
    if args.json {
        let checks: Vec<_> = checks
            .iter()
            .map(|(ok, m)| serde_json::json!({"ok": ok, "check": m}))
            .collect();
        let document = serde_json::json!({"header": header, "claims": claims, "checks": checks});
        println!("{}", serde_json::to_string_pretty(&document).expect("JSON"));
    } else {
        print!("{}", render(&header, &claims, &checks));
    }
    if checks.iter().all(|(ok, _)| *ok) {
        Ok(())
    } else {
        Err(Failure::new(
            Code::NoPerm,
            "the token is not one Exchange Online accepts (see the checks above)",
        ))
    }
}

fn read_token(path: &std::path::Path) -> Result<String, Failure> {
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).map(drop)
    } else {
        std::fs::read_to_string(path).map(|t| text = t)
    };
    read.map_err(|e| Failure::new(Code::Usage, format!("cannot read {}: {e}", path.display())))?;
    let token = text.trim().trim_start_matches("Bearer ").to_owned();
    if token.is_empty() {
        return Err(Failure::new(Code::Data, format!("{} holds no token", path.display())));
    }
    Ok(token)
}

fn render(header: &serde_json::Value, claims: &serde_json::Value, checks: &[(bool, String)]) -> String {
    let mut out = String::from("header\n");
    for key in ["typ", "alg", "kid", "x5t"] {
        if let Some(v) = header.get(key) {
            out.push_str(&format!("  {key:<10} {}\n", plain(v)));
        }
    }
    out.push_str("claims\n");
    let time = |v: &serde_json::Value| {
        v.as_i64()
            .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
            .map(|t| format!("{} ({})", t, relative(Timestamp::from_datetime(t))))
    };
    if let Some(map) = claims.as_object() {
        for (key, value) in map {
            let shown = match key.as_str() {
                "iat" | "nbf" | "exp" => time(value).unwrap_or_else(|| plain(value)),
                _ => plain(value),
            };
            out.push_str(&format!("  {key:<16} {shown}\n"));
        }
    }
    if !checks.is_empty() {
        out.push_str("checks (what Exchange Online needs)\n");
        for (ok, message) in checks {
            out.push_str(&format!("  {}  {message}\n", if *ok { "ok " } else { "BAD" }));
        }
    }
    out
}

fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn relative(t: Timestamp) -> String {
    let delta = Timestamp::now().secs_until(t);
    if delta >= 0 {
        format!("in {delta} s")
    } else {
        format!("{} s ago", -delta)
    }
}
