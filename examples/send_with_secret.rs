//! Sends one message with a client secret.
//!
//! ```text
//! AZURE_TENANT_ID=… AZURE_CLIENT_ID=… AZURE_CLIENT_SECRET=… M365_MAILER_MAILBOX=mailer@contoso.com \
//!     cargo run --example send_with_secret -- ops@contoso.com
//! ```
//!
//! Exits with the code `m365-mailer send` would (sysexits): 75 means "try again later".

use m365_mailer::{Mailer, Message};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let to = std::env::args().nth(1).unwrap_or_else(|| "ops@contoso.com".to_owned());
    let result = async {
        let mailer = Mailer::from_env()?;
        let from = mailer.from_address().to_owned();
        let message = Message::text(&from, &[&to], "Sent with a client secret", "Hello from m365-mailer.\n")?;
        mailer.send(&message).await
    }
    .await;
    match result {
        Ok(accepted) => {
            println!("accepted: {}", accepted.reply);
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            if let Some(explanation) = e.explanation() {
                eprint!("{explanation}");
            }
            std::process::ExitCode::from(u8::from(e.exit_code()))
        }
    }
}
