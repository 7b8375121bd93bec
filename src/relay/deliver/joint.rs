//! The mailbox's limits held jointly with the other relays on a PostgreSQL queue: Exchange
//! counts a mailbox's messages, recipients and connections whichever relay sends them, so
//! every relay takes a slot in the database (`queue/postgres/slots.rs`) before it opens a
//! connection (a Graph request) and before it starts a message. The relay's own limiter stays
//! in front, as the bound of this relay alone. A SQLite queue has one relay: no joint slots.

use super::*;
use crate::queue::{Seat, Slot, SlotLimits, SlotWait, Slots};

/// How often a worker with due messages looks for a free connection.
const SEAT_POLL: Duration = Duration::from_millis(500);

/// The joint limits of one account's mailbox.
#[derive(Debug)]
pub(super) struct Joint {
    slots: Slots,
    /// The mailbox, as Exchange counts it (case does not matter).
    mailbox: String,
    limits: SlotLimits,
    seat: Seat,
    /// Connections (Graph requests) of the mailbox at a time, across the relays.
    seats: u32,
}

impl Joint {
    /// The joint limits of `account` on `queue`, if its queue is shared.
    pub(super) fn new(queue: &Queue, account: &Account, settings: &Settings) -> Option<Self> {
        let limits = settings.limits;
        Some(Self {
            slots: queue.joint_slots()?,
            mailbox: account.mailbox.value.to_ascii_lowercase(),
            limits: SlotLimits {
                messages: limits.messages,
                window: limits.window,
                hourly: limits.hourly,
                hour: limits.hour,
                recipients: limits.recipients,
                day: limits.day,
            },
            seat: match account.transport {
                Transport::Graph => Seat::Graph,
                Transport::Smtp => Seat::Smtp,
            },
            seats: u32::try_from(settings.connections_per_account).unwrap_or(u32::MAX),
        })
    }
}

/// Why a worker without a seat does not lease now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unseated {
    /// Nothing is due for this long.
    Idle(Duration),
    /// Every connection is taken (by other relays, or this one's other workers): look again
    /// after this long. A new message changes nothing, so it does not wake the worker: the
    /// workers that hold the connections deliver it.
    Full(Duration),
}

impl AccountDelivery {
    /// Makes sure the worker holds one of the mailbox's connections before it leases a
    /// message: `Ok` to lease, or why not.
    pub(super) async fn seated(&self, seat: &mut Option<Slot>, now: Timestamp) -> Result<(), Unseated> {
        let Some(joint) = &self.joint else {
            return Ok(());
        };
        if seat.is_some() {
            return Ok(());
        }
        // A seat is taken for due work only: an idle worker holds none.
        match self.queue.next_due(self.name(), now).await {
            Ok(Some(due)) if due <= now => {}
            Ok(Some(due)) => return Err(Unseated::Idle(now.until(due))),
            Ok(None) => return Err(Unseated::Idle(RECHECK)),
            Err(e) => {
                tracing::error!(account = %self.name(), error = %e, "cannot read the queue");
                return Err(Unseated::Idle(QUEUE_RETRY));
            }
        }
        match joint.slots.seat(&joint.mailbox, joint.seat, joint.seats).await {
            Ok(Some(slot)) => {
                *seat = Some(slot);
                Ok(())
            }
            Ok(None) => Err(Unseated::Full(SEAT_POLL)),
            Err(e) => {
                tracing::warn!(account = %self.name(), error = %e, "cannot take one of the mailbox's connections");
                Err(Unseated::Idle(QUEUE_RETRY))
            }
        }
    }

    /// The worker goes idle without a connection: its seat is another's to take.
    pub(super) async fn unseat(&self, seat: &mut Option<Slot>) {
        if let (Some(joint), Some(slot)) = (&self.joint, seat.take())
            && let Err(e) = joint.slots.leave(slot).await
        {
            tracing::warn!(account = %self.name(), error = %e, "cannot give back one of the mailbox's connections; it runs out by itself");
        }
    }

    /// A slot for a message to `recipients` recipients in the mailbox's joint window and day
    /// (`None` without a shared queue), or how long it waits.
    pub(super) async fn joint_slot(&self, recipients: u32) -> Result<Option<Slot>, Wait> {
        let Some(joint) = &self.joint else {
            return Ok(None);
        };
        match joint.slots.message(&joint.mailbox, &joint.limits, recipients).await {
            Ok(Ok(slot)) => Ok(Some(slot)),
            Ok(Err(SlotWait::For(wait))) => Err(Wait::Until(clock::instant() + wait)),
            Ok(Err(SlotWait::Never)) => Err(Wait::Never),
            Err(e) => {
                // Longer than a message is held: it goes back to the queue, or, with the
                // database away, is due again when its lease runs out.
                tracing::warn!(account = %self.name(), error = %e, "cannot take a slot in the mailbox's limits");
                Err(Wait::Until(clock::instant() + HOLD_AT_MOST + QUEUE_RETRY))
            }
        }
    }

    /// The message of `slot` ended; `submitted`: Exchange received it.
    pub(super) async fn joint_sent(&self, slot: Option<Slot>, submitted: bool) {
        if let (Some(joint), Some(slot)) = (&self.joint, slot)
            && let Err(e) = joint.slots.sent(slot, submitted).await
        {
            tracing::warn!(account = %self.name(), error = %e, "cannot record the message in the mailbox's limits; its slot runs out by itself");
        }
    }

    /// Exchange throttled the mailbox: the other relays pause it too.
    pub(super) async fn joint_pause(&self, pause: Duration) {
        if let Some(joint) = &self.joint
            && let Err(e) = joint.slots.pause(&joint.mailbox, pause).await
        {
            tracing::warn!(account = %self.name(), error = %e, "cannot pause the mailbox for the other relays");
        }
    }
}
