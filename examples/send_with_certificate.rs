//! Sends one MIME message with a certificate credential (PKCS#12 or PEM): no secret exists to
//! leak. The certificate's public part is uploaded to the app registration.
//!
//! ```text
//! AZURE_TENANT_ID=… AZURE_CLIENT_ID=… AZURE_CLIENT_CERTIFICATE_PATH=/etc/m365-mailer/app.pfx \
//! AZURE_CLIENT_CERTIFICATE_PASSWORD=… M365_MAILER_MAILBOX=mailer@contoso.com \
//!     cargo run --example send_with_certificate -- ops@contoso.com
//! ```

use m365_mailer::{Mailer, Message};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let to = std::env::args().nth(1).unwrap_or_else(|| "ops@contoso.com".to_owned());
    let result = async {
        let mailer = Mailer::from_env()?;
        let from = mailer.from_address().to_owned();
        let mime =
            format!("From: {from}\r\nTo: {to}\r\nSubject: Sent with a certificate\r\n\r\nHello from m365-mailer.\r\n");
        let message = Message::mime(mime.as_bytes(), &[&to])?;
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
            std::process::ExitCode::from(u8::from(e.exit_code()))
        }
    }
}
