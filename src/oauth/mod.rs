//! OAuth 2.0 client credentials against Entra ID: clouds, credentials, client assertions, the
//! token endpoint's answers, and the caching token provider.

pub(crate) mod assertion;
pub(crate) mod cloud;
pub(crate) mod credential;
pub(crate) mod device;
pub(crate) mod inspect;
pub(crate) mod managed_identity;
pub(crate) mod provider;
pub(crate) mod response;

pub(crate) use assertion::AssertionStyle;
pub(crate) use cloud::Cloud;
pub(crate) use credential::{Certificate, ClientCredential};
pub(crate) use provider::{AccessToken, DiskCache, RetryPolicy, TokenError, TokenProvider, TokenSource};
