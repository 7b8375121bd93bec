use super::*;

fn spec() -> Spec {
    Spec {
        tenant: "contoso.onmicrosoft.com".into(),
        client_id: "0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e".into(),
        mailbox: Some("mailer@contoso.com".into()),
        sp_id: Some("6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a".into()),
        display_name: "m365-mailer".into(),
        ..Spec::default()
    }
}

fn hve() -> Spec {
    Spec {
        service: Service::Hve,
        mailbox: Some("hve@contoso.com".into()),
        ..spec()
    }
}

fn acs() -> Spec {
    Spec {
        service: Service::Acs,
        tenant: "6f1d3c2a-9b4e-4d7a-8c1f-2e5b7a9d0c13".into(),
        mailbox: Some("DoNotReply@mail.contoso.com".into()),
        sp_id: None,
        acs: AcsIds {
            subscription: Some("11111111-2222-4333-8444-555555555555".into()),
            resource_group: Some("rg-mail".into()),
            resource: Some("contoso-acs".into()),
            smtp_username: Some("mailer".into()),
        },
        ..spec()
    }
}

/// The lines that PowerShell runs (not comments, not blank).
fn commands(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).collect()
}

#[test]
fn the_script_names_the_right_object_id() {
    let text = script(&spec()).unwrap();
    assert!(text.contains("New-ServicePrincipal -AppId '0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e' -ObjectId '6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a'"));
    assert!(text.contains("NOT the Object ID shown under App registrations"));
}

#[test]
fn rbac_for_applications_is_the_default() {
    let text = script(&Spec {
        send_as: vec!["alerts@contoso.com".into()],
        ..spec()
    })
    .unwrap();
    assert!(
        text.contains(
            "-RecipientRestrictionFilter 'PrimarySmtpAddress -eq ''mailer@contoso.com'' -or PrimarySmtpAddress -eq ''alerts@contoso.com'''"
        ),
        "{text}"
    );
    assert!(text.contains("-Role 'Application SMTP.SendAsApp' -App '6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a'"));
    assert!(text.contains(
        "Test-ServicePrincipalAuthorization -Identity '6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a' -Resource 'mailer@contoso.com'"
    ));
    assert!(!text.contains("Add-MailboxPermission"));
    assert!(!text.contains("admin-consent"), "no Entra permission with RBAC");
    for source in [
        "MC1158911",
        "498356",
        "permissions-exo/application-rbac",
        "smtp-app-rbac-onboarding",
    ] {
        assert!(text.contains(source), "{source}");
    }
    // The old flag asks for the same.
    let explicit = script(&Spec {
        access: Some(Access::Rbac),
        send_as: vec!["alerts@contoso.com".into()],
        ..spec()
    })
    .unwrap();
    assert_eq!(explicit, text);
}

#[test]
fn per_mailbox_grants_the_permission_and_the_mailbox() {
    let text = script(&Spec {
        access: Some(Access::PerMailbox),
        ..spec()
    })
    .unwrap();
    assert!(text.contains("SMTP.SendAsApp → Add permissions, then \"Grant admin consent\""));
    assert!(text.contains("az ad app permission admin-consent --id 0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e"));
    assert!(text.contains("Add-MailboxPermission -Identity 'mailer@contoso.com' -User '6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a' -AccessRights FullAccess"));
    assert!(text.contains("Add-RecipientPermission -Identity 'mailer@contoso.com'"));
    assert!(!text.contains("New-ManagementScope"));
    assert!(!text.contains("Test-ServicePrincipalAuthorization"));
}

#[test]
fn hve_allows_the_app_on_the_account() {
    let text = script(&hve()).unwrap();
    let commands = commands(&text);
    assert!(commands.iter().any(|l| l.starts_with(
        "New-MailUser -HVEAccount -Name 'hve' -Password (Read-Host 'A password for the HVE account' -AsSecureString) -PrimarySmtpAddress 'hve@contoso.com'"
    )));
    // The cmdlet takes the Enterprise application's Object ID, as -AppIds.
    assert!(
        commands
            .contains(&"Add-HVEAppAccess -Identity 'hve@contoso.com' -AppIds '6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a'")
    );
    assert!(text.contains("Office 365 Exchange Online →\n#      Application permissions → Mail.Send"));
    assert!(text.contains("NOT SMTP.SendAsApp"));
    for expected in [
        "smtp-hve.office365.com, port 587, STARTTLS",
        "smtp.hve.mx.microsoft",
        "501 5.5.127",
        "at most 10 apps",
        "up to\n# 5 minutes",
        "internal recipients only",
        "#   service = \"hve\"",
        "#   mailbox = \"hve@contoso.com\"",
        "#   internal_domains = [\"contoso.com\"]",
        "learn.microsoft.com/exchange/mail-flow-best-practices/high-volume-mails-m365",
        "learn.microsoft.com/powershell/module/exchangepowershell/add-hveappaccess",
    ] {
        assert!(text.contains(expected), "missing {expected:?}:\n{text}");
    }
    assert!(!text.contains("New-ServicePrincipal") && !text.contains("Add-MailboxPermission"));
    // Without --sp-id the script asks for the Object ID.
    let asked = script(&Spec { sp_id: None, ..hve() }).unwrap();
    assert!(asked.contains("$sp = Read-Host 'Enterprise application Object ID'"));
    assert!(asked.contains("-AppIds $sp"));
}

#[test]
fn acs_fills_the_given_ids_and_asks_for_the_others() {
    let text = script(&acs()).unwrap();
    let commands = commands(&text);
    for expected in [
        "$subscription = '11111111-2222-4333-8444-555555555555'",
        "$resourceGroup = 'rg-mail'",
        "$acsResource = 'contoso-acs'",
        "$smtpUsername = 'mailer'",
        "$clientId = '0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e'",
        "$tenantId = '6f1d3c2a-9b4e-4d7a-8c1f-2e5b7a9d0c13'",
        "$scope = \"/subscriptions/$subscription/resourceGroups/$resourceGroup/providers/Microsoft.Communication/communicationServices/$acsResource\"",
        "az role assignment create --assignee $clientId --role 'Communication and Email Service Owner' --scope $scope",
    ] {
        assert!(commands.contains(&expected), "missing {expected:?}:\n{text}");
    }
    assert!(commands.iter().any(|l| l.starts_with("az communication smtp-username create")
        && l.contains("--smtp-username 'm365-mailer' --username $smtpUsername --entra-application-id $clientId --tenant-id $tenantId")));
    for expected in [
        "Microsoft.Communication/CommunicationServices/Read",
        "Microsoft.Communication/EmailServices/write",
        "SMTP Usernames → Add",
        "smtp.azurecomm.net, port 587, STARTTLS, AUTH LOGIN",
        "client secret's Value",
        "30 mails a minute and 100 an hour",
        "#   service = \"acs\"",
        "#   smtp_username = \"mailer\"",
        "#   from = \"DoNotReply@mail.contoso.com\"",
        "learn.microsoft.com/azure/communication-services/quickstarts/email/send-email-smtp/smtp-authentication",
    ] {
        assert!(text.contains(expected), "missing {expected:?}:\n{text}");
    }
    assert!(!text.contains("Connect-ExchangeOnline") && !text.contains("SMTP.SendAsApp"));

    // Nothing but the app: every Azure id asked for, the config lines marked.
    let bare = script(&Spec {
        tenant: "contoso.onmicrosoft.com".into(),
        mailbox: None,
        acs: AcsIds::default(),
        ..acs()
    })
    .unwrap();
    for expected in [
        "$subscription = Read-Host 'Subscription ID of the Communication Services resource'   # not given: --subscription",
        "$resourceGroup = Read-Host",
        "$acsResource = Read-Host",
        "$smtpUsername = Read-Host",
        "$tenantId = az account show --query tenantId --output tsv",
        "#   smtp_username = \"<the SMTP username>\"",
        "#   from = \"<the MailFrom address>\"",
        "<the MailFrom address: not given, --sender>",
    ] {
        assert!(bare.contains(expected), "missing {expected:?}:\n{bare}");
    }
}

#[test]
fn flags_of_another_service_are_refused() {
    let refused = [
        Spec {
            access: Some(Access::PerMailbox),
            ..hve()
        },
        Spec {
            access: Some(Access::Rbac),
            ..acs()
        },
        Spec {
            send_as: vec!["alerts@contoso.com".into()],
            ..hve()
        },
        Spec {
            sp_id: Some("6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a".into()),
            ..acs()
        },
        Spec {
            acs: AcsIds {
                subscription: Some("11111111-2222-4333-8444-555555555555".into()),
                ..AcsIds::default()
            },
            ..spec()
        },
        Spec {
            acs: AcsIds {
                smtp_username: Some("mailer".into()),
                ..AcsIds::default()
            },
            ..hve()
        },
        Spec {
            mailbox: None,
            ..spec()
        },
        Spec { mailbox: None, ..hve() },
    ];
    for spec in refused {
        let e = script(&spec).unwrap_err();
        assert!(
            matches!(e, SetupError::NotForService { .. } | SetupError::MissingMailbox { .. }),
            "{spec:?}: {e}"
        );
    }
    let e = script(&Spec {
        access: Some(Access::PerMailbox),
        ..hve()
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "--per-mailbox applies to --service exchange, not to --service hve"
    );
}

#[test]
fn hostile_values_are_quoted_or_refused() {
    let quoted = Spec {
        mailbox: Some("o'brien$home`x@contoso.com".into()),
        send_as: vec!["o\u{2019}neil\u{2018}$x@contoso.com".into()],
        display_name: "a'; Remove-Mailbox -Identity *; $(Stop-Computer) '".into(),
        ..spec()
    };
    for text in [
        script(&quoted).unwrap(),
        script(&Spec {
            access: Some(Access::PerMailbox),
            ..quoted.clone()
        })
        .unwrap(),
    ] {
        assert!(text.contains("-Identity 'o''brien$home`x@contoso.com'"), "{text}");
        assert!(
            text.contains("-DisplayName 'a''; Remove-Mailbox -Identity *; $(Stop-Computer) '''"),
            "{text}"
        );
        assert!(
            text.contains("'o\u{2019}\u{2019}neil\u{2018}\u{2018}$x@contoso.com'"),
            "{text}"
        );
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("Stop-Computer") || l.starts_with("Remove-Mailbox"))
        );
    }
    // In the scope's filter the address is an OPATH literal inside a PowerShell literal.
    let text = script(&quoted).unwrap();
    assert!(
        text.contains("'PrimarySmtpAddress -eq ''o''''brien$home`x@contoso.com'' -or"),
        "{text}"
    );
    let hve_text = script(&Spec {
        mailbox: Some("o'brien$x`y@contoso.com".into()),
        ..hve()
    })
    .unwrap();
    assert!(hve_text.contains("-Name 'o''brien$x`y' -Password"), "{hve_text}");
    assert!(hve_text.contains("Add-HVEAppAccess -Identity 'o''brien$x`y@contoso.com'"));
    let acs_text = script(&Spec {
        mailbox: Some("o'brien\"$x@contoso.com".into()),
        acs: AcsIds {
            smtp_username: Some("o'brien$x@contoso.com".into()),
            ..acs().acs
        },
        ..acs()
    });
    // A double quote is not an address character: refused before it reaches a TOML line.
    assert!(acs_text.is_err());
    let acs_text = script(&Spec {
        acs: AcsIds {
            smtp_username: Some("o'brien$x@contoso.com".into()),
            ..acs().acs
        },
        ..acs()
    })
    .unwrap();
    assert!(
        acs_text.contains("$smtpUsername = 'o''brien$x@contoso.com'"),
        "{acs_text}"
    );

    let refused = [
        Spec {
            tenant: "contoso.com'; Stop-Computer; '".into(),
            ..spec()
        },
        Spec {
            client_id: "$(Stop-Computer)".into(),
            ..spec()
        },
        Spec {
            mailbox: Some("x$(Stop-Computer)@contoso.com".into()),
            ..spec()
        },
        Spec {
            mailbox: Some("a@contoso.com\nStop-Computer".into()),
            ..spec()
        },
        Spec {
            display_name: "x\r\nStop-Computer".into(),
            ..spec()
        },
        Spec {
            sp_id: Some("`whoami`".into()),
            ..spec()
        },
        Spec {
            mailbox: Some("hve@contoso.com\nStop-Computer".into()),
            ..hve()
        },
        Spec {
            sp_id: Some("$(Stop-Computer)".into()),
            ..hve()
        },
    ];
    for spec in refused {
        assert!(script(&spec).is_err(), "{spec:?}");
    }
}

#[test]
fn hostile_azure_ids_are_refused() {
    let with = |change: fn(&mut AcsIds)| {
        let mut spec = acs();
        change(&mut spec.acs);
        spec
    };
    let refused = [
        with(|a| a.subscription = Some("$(Stop-Computer)".into())),
        with(|a| a.subscription = Some("contoso".into())),
        with(|a| a.resource_group = Some("rg'; Stop-Computer; '".into())),
        with(|a| a.resource_group = Some("rg\nStop-Computer".into())),
        with(|a| a.resource_group = Some("rg$(x)".into())),
        with(|a| a.resource_group = Some("rg.".into())),
        with(|a| a.resource_group = Some(String::new())),
        with(|a| a.resource = Some("acs; rm -rf /".into())),
        with(|a| a.resource = Some("acs`whoami`".into())),
        with(|a| a.resource = Some("a".repeat(64))),
        with(|a| a.smtp_username = Some("user name".into())),
        with(|a| a.smtp_username = Some("$(Stop-Computer)".into())),
        with(|a| a.smtp_username = Some("mailer\r\nStop-Computer".into())),
        with(|a| a.smtp_username = Some("\"; Stop-Computer; \"".into())),
        Spec {
            display_name: "m365 mailer'; Stop-Computer".into(),
            ..acs()
        },
        Spec {
            mailbox: Some("x$(Stop-Computer)@contoso.com".into()),
            ..acs()
        },
    ];
    for spec in refused {
        let e = script(&spec).unwrap_err();
        assert!(
            !matches!(e, SetupError::NotForService { .. }),
            "{spec:?}: refused for its value, not its flag: {e}"
        );
    }
    assert!(
        script(&with(|a| a.resource_group = Some("rg_mail-(prod).eu".into()))).is_ok(),
        "Azure's own characters pass"
    );
}
