//! National clouds: where tokens come from and where mail goes (fact sheet §5.3).

use std::fmt;
use std::str::FromStr;

/// A Microsoft cloud.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Cloud {
    /// The worldwide cloud (GCC included).
    #[default]
    Global,
    /// US Government GCC High.
    GccHigh,
    /// US Government DoD.
    Dod,
    /// China, operated by 21Vianet.
    China,
}

/// The endpoints of a cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CloudEndpoints {
    /// Entra ID authority host, `https://…` without a trailing slash.
    pub(crate) login: &'static str,
    /// Exchange Online resource; the SMTP scope is this plus `/.default`.
    pub(crate) exchange_resource: &'static str,
    /// SMTP client submission host.
    pub(crate) smtp_host: &'static str,
    /// Microsoft Graph root.
    pub(crate) graph: &'static str,
    /// Audience of workload-identity federation tokens.
    pub(crate) federation_audience: &'static str,
}

impl Cloud {
    /// The preset's endpoints. The DoD SMTP host and the sovereign Exchange scopes are derived
    /// from Microsoft's endpoint map, not stated on a Learn page (fact sheet §5.3).
    pub(crate) fn endpoints(self) -> CloudEndpoints {
        match self {
            Cloud::Global => CloudEndpoints {
                login: "https://login.microsoftonline.com",
                exchange_resource: "https://outlook.office365.com",
                smtp_host: "smtp.office365.com",
                graph: "https://graph.microsoft.com",
                federation_audience: "api://AzureADTokenExchange",
            },
            Cloud::GccHigh => CloudEndpoints {
                login: "https://login.microsoftonline.us",
                exchange_resource: "https://outlook.office365.us",
                smtp_host: "smtp.office365.us",
                graph: "https://graph.microsoft.us",
                federation_audience: "api://AzureADTokenExchangeUSGov",
            },
            Cloud::Dod => CloudEndpoints {
                login: "https://login.microsoftonline.us",
                exchange_resource: "https://outlook-dod.office365.us",
                smtp_host: "outlook-dod.office365.us",
                graph: "https://dod-graph.microsoft.us",
                federation_audience: "api://AzureADTokenExchangeUSGov",
            },
            Cloud::China => CloudEndpoints {
                login: "https://login.partner.microsoftonline.cn",
                exchange_resource: "https://partner.outlook.cn",
                smtp_host: "smtp.partner.outlook.cn",
                graph: "https://microsoftgraph.chinacloudapi.cn",
                federation_audience: "api://AzureADTokenExchangeChina",
            },
        }
    }

    /// `https://<exchange>/.default`.
    pub(crate) fn exchange_scope(self) -> String {
        format!("{}/.default", self.endpoints().exchange_resource)
    }

    /// The v2.0 token endpoint of `tenant` on `authority` (a host URL).
    pub(crate) fn token_endpoint(authority: &str, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", authority.trim_end_matches('/'))
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cloud::Global => "global",
            Cloud::GccHigh => "gcc-high",
            Cloud::Dod => "dod",
            Cloud::China => "china",
        })
    }
}

impl FromStr for Cloud {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "global" | "public" | "commercial" | "gcc" => Ok(Cloud::Global),
            "gcc-high" | "gcchigh" | "usgov" => Ok(Cloud::GccHigh),
            "dod" | "usgov-dod" => Ok(Cloud::Dod),
            "china" | "21vianet" => Ok(Cloud::China),
            _ => Err(format!("unknown cloud `{s}`: expected global, gcc-high, dod or china")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The presets against fact sheet §5.3, row by row.
    #[test]
    fn presets_match_the_fact_sheet() {
        let rows = [
            (
                Cloud::Global,
                "https://login.microsoftonline.com",
                "https://outlook.office365.com/.default",
                "smtp.office365.com",
                "https://graph.microsoft.com",
                "api://AzureADTokenExchange",
            ),
            (
                Cloud::GccHigh,
                "https://login.microsoftonline.us",
                "https://outlook.office365.us/.default",
                "smtp.office365.us",
                "https://graph.microsoft.us",
                "api://AzureADTokenExchangeUSGov",
            ),
            (
                Cloud::Dod,
                "https://login.microsoftonline.us",
                "https://outlook-dod.office365.us/.default",
                "outlook-dod.office365.us",
                "https://dod-graph.microsoft.us",
                "api://AzureADTokenExchangeUSGov",
            ),
            (
                Cloud::China,
                "https://login.partner.microsoftonline.cn",
                "https://partner.outlook.cn/.default",
                "smtp.partner.outlook.cn",
                "https://microsoftgraph.chinacloudapi.cn",
                "api://AzureADTokenExchangeChina",
            ),
        ];
        for (cloud, login, scope, smtp, graph, audience) in rows {
            let e = cloud.endpoints();
            assert_eq!(
                (
                    e.login,
                    cloud.exchange_scope().as_str(),
                    e.smtp_host,
                    e.graph,
                    e.federation_audience
                ),
                (login, scope, smtp, graph, audience),
                "{cloud}"
            );
            assert_eq!(cloud.to_string().parse::<Cloud>(), Ok(cloud));
        }
        assert_eq!(
            Cloud::token_endpoint("https://login.microsoftonline.com/", "contoso.com"),
            "https://login.microsoftonline.com/contoso.com/oauth2/v2.0/token"
        );
        assert!("mars".parse::<Cloud>().is_err());
    }
}
