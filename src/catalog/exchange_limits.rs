//! Exchange Online's limits, throttling and unknown recipients.

#[allow(clippy::wildcard_imports)]
use super::causes::*;
use super::{Blame, Cause, Entry, Retry, Signal};

/// The entries of this family.
pub(super) static ENTRIES: &[Entry] = &[
    Entry {
        key: "smtp/432-4.3.2",
        signal: Signal::Smtp {
            code: 432,
            enhanced: "4.3.2",
            text: None,
        },
        summary: "more than 3 concurrent connections for this mailbox",
        causes: &[Cause {
            id: "too-many-connections",
            why: "Exchange allows 3 concurrent submitting connections per mailbox; this was one more",
            fix: "Send through fewer connections at once (the relay keeps to 3 per mailbox), or spread the load over several mailboxes.",
            commands: &[],
        }],
        retry: Retry::AfterThrottling,
        blame: Blame::Account,
        propagation: false,
        link: LEARN_SUBMISSION,
    },
    Entry {
        key: "smtp/554-5.2.0",
        signal: Signal::Smtp {
            code: 554,
            enhanced: "5.2.0",
            text: Some("SubmissionQuotaExceeded"),
        },
        summary: "the mailbox sent to more than 10,000 recipients in 24 hours",
        causes: &[Cause {
            id: "recipient-quota",
            why: "the 10,000 recipients per rolling 24 hours of the mailbox are used up",
            fix: "Wait until the window frees (sending resumes within 24 hours), spread the mail over several mailboxes, or use High Volume Email or a bulk-mail service for mass mail.",
            commands: &[],
        }],
        retry: Retry::AfterThrottling,
        blame: Blame::Account,
        propagation: false,
        link: "https://learn.microsoft.com/exchange/troubleshoot/email-delivery/ndr/fix-error-for-submission-quota-exceeded-in-exchange-online",
    },
    Entry {
        key: "smtp/554-5.2.2",
        signal: Signal::Smtp {
            code: 554,
            enhanced: "5.2.2",
            text: None,
        },
        summary: "the sending mailbox is full",
        causes: &[Cause {
            id: "mailbox-full",
            why: "every message sent over SMTP is kept in the mailbox's Sent Items, which has filled the mailbox",
            fix: "Empty Sent Items (a retention policy can do it regularly), or raise the mailbox quota.",
            commands: &[
                CONNECT,
                "Get-MailboxStatistics -Identity {mailbox} | Format-List TotalItemSize",
            ],
        }],
        retry: Retry::AfterAccountFix,
        blame: Blame::Account,
        propagation: false,
        link: LEARN_SUBMISSION,
    },
    Entry {
        key: "smtp/550-5.2.251",
        signal: Signal::Smtp {
            code: 550,
            enhanced: "5.2.251",
            text: None,
        },
        summary: "throttled after continuous mailbox-full errors",
        causes: &[Cause {
            id: "throttled-mailbox-full",
            why: "the mailbox kept failing because it is full, so Exchange throttles it for a while",
            fix: "Free space in the mailbox (Sent Items); the throttle lifts after a period Microsoft decides, support cannot lift it.",
            commands: &[],
        }],
        retry: Retry::AfterThrottling,
        blame: Blame::Account,
        propagation: false,
        link: LEARN_CONTINUOUS,
    },
    Entry {
        key: "smtp/550-5.2.252-throttled",
        signal: Signal::Smtp {
            code: 550,
            enhanced: "5.2.252",
            text: Some("continuous send as denied"),
        },
        summary: "throttled after continuous SendAsDenied errors",
        causes: &[Cause {
            id: "throttled-send-as",
            ..NO_SEND_AS
        }],
        retry: Retry::AfterThrottling,
        blame: Blame::Account,
        propagation: false,
        link: LEARN_CONTINUOUS,
    },
    Entry {
        key: "smtp/550-5.2.253",
        signal: Signal::Smtp {
            code: 550,
            enhanced: "5.2.253",
            text: None,
        },
        summary: "throttled after continuous invalid-licence errors",
        causes: &[Cause {
            id: "throttled-license",
            why: "the mailbox has no Exchange Online licence and kept failing",
            fix: "Assign an Exchange Online licence to the user, or send as a shared mailbox.",
            commands: &[],
        }],
        retry: Retry::AfterThrottling,
        blame: Blame::Account,
        propagation: false,
        link: LEARN_CONTINUOUS,
    },
    Entry {
        key: "smtp/550-5.2.254",
        signal: Signal::Smtp {
            code: 550,
            enhanced: "5.2.254",
            text: None,
        },
        summary: "throttled after continuous too-many-recipients errors",
        causes: &[Cause {
            id: "throttled-recipients",
            why: "messages kept exceeding the recipient limit (500 per message by default)",
            fix: "Send to fewer recipients per message; the throttle lifts after a period Microsoft decides.",
            commands: &[],
        }],
        retry: Retry::AfterThrottling,
        blame: Blame::Account,
        propagation: false,
        link: LEARN_CONTINUOUS,
    },
    Entry {
        key: "smtp/550-5.2.255",
        signal: Signal::Smtp {
            code: 550,
            enhanced: "5.2.255",
            text: None,
        },
        summary: "throttled after continuous invalid-recipient errors",
        causes: &[Cause {
            id: "throttled-invalid-recipients",
            why: "messages kept going to addresses that do not exist",
            fix: "Clean the recipient lists; the throttle lifts after a period Microsoft decides.",
            commands: &[],
        }],
        retry: Retry::AfterThrottling,
        blame: Blame::Account,
        propagation: false,
        link: LEARN_CONTINUOUS,
    },
    Entry {
        key: "smtp/550-5.7.233",
        signal: Signal::Smtp {
            code: 550,
            enhanced: "5.7.233",
            text: None,
        },
        summary: "the tenant exceeded its daily limit of external recipients",
        causes: &[Cause {
            id: "tenant-external-limit",
            why: "the tenant-wide external recipient rate limit (TERRL), scaled by licence count, is used up",
            fix: "Wait for the rolling window; check the status with Get-LimitsEnforcementStatus; more licences raise the limit.",
            commands: &[CONNECT, "Get-LimitsEnforcementStatus"],
        }],
        retry: Retry::AfterThrottling,
        blame: Blame::Account,
        propagation: false,
        link: LEARN_NDR,
    },
    // ---------------------------------------------------------------- recipients
    Entry {
        key: "smtp/550-5.1.10",
        signal: Signal::Smtp {
            code: 550,
            enhanced: "5.1.10",
            text: None,
        },
        summary: "the recipient does not exist",
        causes: &[Cause {
            id: "recipient-not-found",
            why: "no mailbox, contact or group has this address (a typo, or a removed mailbox); for other domains, \
                  Exchange checked the recipient with Directory-Based Edge Blocking",
            fix: "Correct the recipient address in the application or device that sends the message.",
            commands: &[],
        }],
        retry: Retry::Permanent,
        blame: Blame::Message,
        propagation: false,
        link: LEARN_NDR,
    },
];
