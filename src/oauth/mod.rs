//! OAuth 2.0 client credentials against Entra ID: clouds, credentials, client assertions, the
//! token endpoint's answers, and the caching token provider.

pub mod assertion;
pub mod cloud;
pub mod credential;
pub mod inspect;
pub mod managed_identity;
pub mod provider;
pub mod response;

pub use assertion::AssertionStyle;
pub use cloud::Cloud;
pub use credential::{Certificate, ClientCredential, CredentialError};
pub use provider::{AccessToken, DiskCache, RetryPolicy, TokenError, TokenProvider, TokenSource};
pub use response::{EntraError, TokenResponse};
