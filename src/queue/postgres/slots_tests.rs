use super::*;
use crate::queue::postgres::testing::TestDatabase;

fn limits(messages: u32, recipients: u32) -> SlotLimits {
    SlotLimits {
        messages,
        window: Duration::from_secs(60),
        hourly: u32::MAX,
        hour: Duration::from_secs(3600),
        recipients,
        day: Duration::from_secs(86_400),
    }
}

fn usage(messages: u32, oldest: Option<i64>, recipients: u64) -> Usage {
    Usage {
        now: Timestamp::from_unix_millis(1_000_000),
        messages,
        oldest: oldest.map(Timestamp::from_unix_millis),
        recipients,
        paused_until: None,
        hourly: messages,
        oldest_in_hour: oldest.map(Timestamp::from_unix_millis),
    }
}

#[test]
fn a_full_hour_waits_for_the_oldest_of_the_hour() {
    // ACS: 100 an hour. The minute has room; the hour's oldest was sent 40 minutes ago.
    let acs = SlotLimits {
        hourly: 100,
        ..limits(30, u32::MAX)
    };
    let mut u = usage(1, Some(990_000), 0);
    u.hourly = 100;
    u.oldest_in_hour = Some(Timestamp::from_unix_millis(1_000_000 - 40 * 60_000));
    assert_eq!(decide(&u, &acs, 1), Verdict::Wait(Duration::from_secs(20 * 60)));
    u.hourly = 99;
    assert_eq!(decide(&u, &acs, 1), Verdict::Go);
}

#[test]
fn a_message_goes_while_the_window_and_the_day_have_room() {
    assert_eq!(decide(&usage(2, Some(990_000), 10), &limits(3, 100), 90), Verdict::Go);
}

#[test]
fn a_full_window_waits_for_its_oldest_message_to_leave_it() {
    // Sent 10 s ago: it leaves the 60 s window in 50 s.
    let wait = decide(&usage(3, Some(990_000), 0), &limits(3, 100), 1);
    assert_eq!(wait, Verdict::Wait(Duration::from_secs(50)));
}

#[test]
fn a_window_held_only_by_messages_in_flight_is_looked_at_again_soon() {
    assert_eq!(decide(&usage(3, None, 0), &limits(3, 100), 1), Verdict::Wait(SOON));
}

#[test]
fn the_days_recipients_wait_for_the_excess_to_leave_the_day() {
    assert_eq!(decide(&usage(0, None, 95), &limits(3, 100), 10), Verdict::Recipients(5));
}

#[test]
fn more_recipients_than_a_day_allows_never_go() {
    assert_eq!(decide(&usage(0, None, 0), &limits(3, 100), 101), Verdict::Never);
}

#[test]
fn a_pause_holds_everything_until_it_ends() {
    let mut u = usage(0, None, 0);
    u.paused_until = Some(Timestamp::from_unix_millis(1_030_000));
    assert_eq!(decide(&u, &limits(3, 100), 1), Verdict::Wait(Duration::from_secs(30)));
    u.paused_until = Some(Timestamp::from_unix_millis(999_000));
    assert_eq!(
        decide(&u, &limits(3, 100), 1),
        Verdict::Go,
        "a pause that ended holds nothing"
    );
}

async fn slots(test: &str) -> Option<Slots> {
    let db = TestDatabase::create(test).await?;
    let store = PostgresStore::connect(&db.target, None).await.expect("connects");
    Some(Slots::new(Arc::new(store)))
}

/// Two relays' handles on one database share the window: the third message waits, for as long
/// as the first takes to leave it; a message that never reached Exchange gives its slot back.
#[tokio::test]
async fn relays_share_the_messages_window() {
    let Some(first) = slots("relays_share_the_messages_window").await else {
        return;
    };
    let second = Slots::new(Arc::clone(&first.inner.store));
    let l = limits(2, 100);
    let a = first.message("m@contoso.com", &l, 1).await.unwrap().expect("room");
    let b = second.message("m@contoso.com", &l, 1).await.unwrap().expect("room");
    assert_eq!(
        second.message("m@contoso.com", &l, 1).await.unwrap().unwrap_err(),
        SlotWait::For(SOON),
        "both held by messages being sent"
    );
    assert!(
        first.message("other@contoso.com", &l, 1).await.unwrap().is_ok(),
        "another mailbox has its own"
    );
    first.sent(a, true).await.unwrap();
    match second.message("m@contoso.com", &l, 1).await.unwrap() {
        Err(SlotWait::For(wait)) => assert!(
            wait > Duration::from_secs(55) && wait <= Duration::from_secs(60),
            "{wait:?}"
        ),
        other => panic!("{other:?}"),
    }
    second.sent(b, false).await.unwrap();
    let c = second.message("m@contoso.com", &l, 1).await.unwrap();
    assert!(
        c.is_ok(),
        "a message Exchange never received gives its slot back: {c:?}"
    );
}

/// ACS's hourly quota is held jointly too: with the minute clear, the third message of an
/// hour that allows two waits for the first to leave the hour.
#[tokio::test]
async fn relays_share_the_hourly_window() {
    let Some(first) = slots("relays_share_the_hourly_window").await else {
        return;
    };
    let second = Slots::new(Arc::clone(&first.inner.store));
    let l = SlotLimits {
        window: Duration::from_millis(50),
        hourly: 2,
        ..limits(30, u32::MAX)
    };
    for slots in [&first, &second] {
        let slot = slots.message("acs@contoso.com", &l, 1).await.unwrap().expect("room");
        slots.sent(slot, true).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    match second.message("acs@contoso.com", &l, 1).await.unwrap() {
        Err(SlotWait::For(wait)) => assert!(
            wait > Duration::from_secs(3590) && wait <= Duration::from_secs(3600),
            "the hour's first leaves it in about an hour: {wait:?}"
        ),
        other => panic!("{other:?}"),
    }
}

/// A mailbox's connections are shared, and one closed still counts for a moment.
#[tokio::test]
async fn relays_share_the_connections() {
    let Some(first) = slots("relays_share_the_connections").await else {
        return;
    };
    let second = Slots::new(Arc::clone(&first.inner.store));
    let a = first.seat("m@contoso.com", Seat::Smtp, 2).await.unwrap().expect("free");
    let _b = second
        .seat("m@contoso.com", Seat::Smtp, 2)
        .await
        .unwrap()
        .expect("free");
    assert!(second.seat("m@contoso.com", Seat::Smtp, 2).await.unwrap().is_none());
    assert!(
        second.seat("m@contoso.com", Seat::Graph, 2).await.unwrap().is_some(),
        "Graph requests are counted apart"
    );
    first.leave(a).await.unwrap();
    assert!(
        second.seat("m@contoso.com", Seat::Smtp, 2).await.unwrap().is_none(),
        "within the grace"
    );
    tokio::time::sleep(GRACE + Duration::from_millis(100)).await;
    assert!(second.seat("m@contoso.com", Seat::Smtp, 2).await.unwrap().is_some());
}

/// The day's recipients are shared, and the wait is until enough of them leave the day;
/// a pause made by one relay holds the other.
#[tokio::test]
async fn relays_share_the_days_recipients_and_the_pauses() {
    let Some(first) = slots("relays_share_the_days_recipients_and_the_pauses").await else {
        return;
    };
    let second = Slots::new(Arc::clone(&first.inner.store));
    let l = limits(100, 10);
    let a = first.message("m@contoso.com", &l, 6).await.unwrap().expect("room");
    first.sent(a, true).await.unwrap();
    match second.message("m@contoso.com", &l, 5).await.unwrap() {
        Err(SlotWait::For(wait)) => assert!(wait > Duration::from_secs(86_000), "{wait:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        second.message("m@contoso.com", &l, 11).await.unwrap().unwrap_err(),
        SlotWait::Never
    );
    let b = second
        .message("m@contoso.com", &l, 4)
        .await
        .unwrap()
        .expect("room for 4");
    drop(b);
    first.pause("m@contoso.com", Duration::from_secs(30)).await.unwrap();
    match second.message("other@contoso.com", &l, 1).await.unwrap() {
        Ok(_) => {}
        other => panic!("another mailbox is not paused: {other:?}"),
    }
    first.pause("x@contoso.com", Duration::from_secs(30)).await.unwrap();
    match second.message("x@contoso.com", &l, 1).await.unwrap() {
        Err(SlotWait::For(wait)) => assert!(wait > Duration::from_secs(25), "{wait:?}"),
        other => panic!("{other:?}"),
    }
}

/// A held slot is renewed while its handle lives; dropped, it runs out and counts as sent.
#[tokio::test]
async fn held_slots_are_renewed_and_a_dropped_one_runs_out() {
    let Some(slots) = slots("held_slots_are_renewed_and_a_dropped_one_runs_out").await else {
        return;
    };
    let seat = slots.seat("m@contoso.com", Seat::Smtp, 3).await.unwrap().expect("free");
    let at = |id: i64| {
        let store = Arc::clone(&slots.inner.store);
        async move {
            let row = store
                .client()
                .await
                .unwrap()
                .query_one("SELECT at_ms, held FROM mailbox_slots WHERE id = $1", &[&id])
                .await
                .unwrap();
            (row.get::<_, i64>(0), row.get::<_, bool>(1))
        }
    };
    let (first, held) = at(seat.id).await;
    assert!(held);
    tokio::time::sleep(RENEW + Duration::from_millis(500)).await;
    let (renewed, _) = at(seat.id).await;
    assert!(renewed > first, "renewed: {first} -> {renewed}");
    let id = seat.id;
    drop(seat);
    tokio::time::sleep(RENEW + Duration::from_millis(500)).await;
    let (after, held) = at(id).await;
    assert!(held, "still counted");
    assert!(
        after - renewed <= millis(RENEW) + 1_000,
        "no longer renewed: {renewed} -> {after}"
    );
}
