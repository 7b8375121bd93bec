//! What the server offers, from its EHLO reply.

use super::reply::Reply;

/// ESMTP extensions the client uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Capabilities {
    /// `STARTTLS` (RFC 3207).
    pub(crate) starttls: bool,
    /// `PIPELINING` (RFC 2920).
    pub(crate) pipelining: bool,
    /// `CHUNKING` (RFC 3030): BDAT.
    pub(crate) chunking: bool,
    /// `SIZE n` (RFC 1870); `Some(0)` means no fixed limit.
    pub(crate) size: Option<usize>,
    /// `8BITMIME` (RFC 6152).
    pub(crate) eight_bit_mime: bool,
    /// `BINARYMIME` (RFC 3030).
    pub(crate) binary_mime: bool,
    /// `SMTPUTF8` (RFC 6531).
    pub(crate) smtputf8: bool,
    /// `ENHANCEDSTATUSCODES` (RFC 2034).
    pub(crate) enhanced_status_codes: bool,
    /// SASL mechanisms of `AUTH`, upper-case.
    pub(crate) auth: Vec<String>,
}

impl Capabilities {
    /// Reads the lines after the greeting line of an EHLO reply.
    pub(crate) fn from_ehlo(reply: &Reply) -> Self {
        let mut caps = Self::default();
        for line in reply.lines().iter().skip(1) {
            let mut words = line.split_whitespace();
            let Some(keyword) = words.next() else { continue };
            match keyword.to_ascii_uppercase().as_str() {
                "STARTTLS" => caps.starttls = true,
                "PIPELINING" => caps.pipelining = true,
                "CHUNKING" => caps.chunking = true,
                "SIZE" => caps.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "8BITMIME" => caps.eight_bit_mime = true,
                "BINARYMIME" => caps.binary_mime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "ENHANCEDSTATUSCODES" => caps.enhanced_status_codes = true,
                "AUTH" => caps.auth.extend(words.map(str::to_ascii_uppercase)),
                _ => {}
            }
        }
        caps
    }

    /// Whether `mechanism` is offered.
    pub(crate) fn offers_auth(&self, mechanism: &str) -> bool {
        self.auth.iter().any(|m| m.eq_ignore_ascii_case(mechanism))
    }

    /// The size limit, if the server has one.
    pub(crate) fn size_limit(&self) -> Option<usize> {
        self.size.filter(|n| *n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_online_after_starttls() {
        let lines = [
            "SY5P282CA0097.outlook.office365.com Hello [192.0.2.1]",
            "SIZE 157286400",
            "PIPELINING",
            "DSN",
            "ENHANCEDSTATUSCODES",
            "AUTH LOGIN XOAUTH2",
            "8BITMIME",
            "BINARYMIME",
            "CHUNKING",
            "SMTPUTF8",
        ];
        let caps = Capabilities::from_ehlo(&Reply::new(250, lines.map(String::from).to_vec()));
        assert!(caps.pipelining && caps.chunking && caps.eight_bit_mime && caps.smtputf8 && !caps.starttls);
        assert_eq!(caps.size_limit(), Some(157_286_400));
        assert!(caps.offers_auth("xoauth2") && caps.offers_auth("LOGIN") && !caps.offers_auth("PLAIN"));
    }

    #[test]
    fn size_without_a_number_means_no_limit() {
        let caps = Capabilities::from_ehlo(&Reply::new(250, vec!["host".into(), "SIZE".into()]));
        assert_eq!((caps.size, caps.size_limit()), (Some(0), None));
    }
}
