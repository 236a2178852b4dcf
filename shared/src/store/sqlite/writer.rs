//! The threads behind the one writing connection. The writer takes deliveries
//! in groups and commits each group in one transaction; the syncer fsyncs the
//! WAL and only then answers the group's deliveries, so the writer goes on with
//! the next group while the disk works; the checkpointer copies the WAL into the
//! database file off the writer's path. Why each of them, with the measurements:
//! docs/performance.md, "Why group commit", "Why a syncer thread fsyncs the WAL"
//! and "Why checkpoints run off the writer's path".

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::state::{Writer, STATE_IDLE};
use super::{lock, unavailable, StoreError};
use crate::event::ReceivedEvent;
use crate::ingest::Outcome;
use crate::telemetry::Chain;

/// At most this many events go into one group commit; more waits for the next.
const MAX_GROUP_EVENTS: usize = 5_000;
/// A group with fewer events waits for the fsync in flight (at most
/// [`SMALL_GROUP_WAIT`]) and takes in what arrives meanwhile before it commits:
/// small groups committed back to back write the same hot pages (counters, the
/// tails of indexes) again and again, which cost more than the overlap gained.
const SMALL_GROUP_EVENTS: usize = 100;
const SMALL_GROUP_WAIT: Duration = Duration::from_millis(5);

/// How often, at most, the checkpointer copies committed pages from the WAL
/// into the database file. Between two runs a hot page (the current slot's
/// counters, the tail of an index) is committed many times and copied once.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(100);

/// Work for the writer thread.
pub(super) enum Job {
    /// A delivery, to be written in the next group commit.
    Record(Delivery),
    /// Any other write, run on its own between groups.
    Run(Box<dyn FnOnce(&mut Connection) + Send>),
}

/// A delivery's events and who waits for their outcomes.
pub(super) struct Delivery {
    pub(super) events: Vec<ReceivedEvent>,
    pub(super) retention_days: u32,
    pub(super) done: oneshot::Sender<Result<Vec<Outcome>, StoreError>>,
}

/// Groups committed and not yet answered: the writer holds a small group back
/// while there are any (see [`SMALL_GROUP_EVENTS`]).
#[derive(Default)]
pub(super) struct Unsynced {
    pub(super) groups: Mutex<usize>,
    answered: std::sync::Condvar,
}

impl Unsynced {
    pub(super) fn add(&self) {
        *lock(&self.groups) += 1;
    }

    pub(super) fn answered(&self, groups: usize) {
        *lock(&self.groups) -= groups;
        self.answered.notify_all();
    }

    /// Waits, at most `limit`, until every committed group is answered.
    fn wait(&self, limit: Duration) {
        let groups = lock(&self.groups);
        let _ = self
            .answered
            .wait_timeout_while(groups, limit, |groups| *groups > 0);
    }
}

/// A group the writer has committed (or failed to), waiting for the fsync that
/// makes it durable before its deliveries are answered.
pub(super) struct Committed {
    pub(super) group: Vec<Delivery>,
    pub(super) written: Result<Vec<Vec<Outcome>>, StoreError>,
}

/// The writer thread: runs jobs in arrival order, deliveries in groups, until
/// every handle of the store is gone. Other jobs come after the state in memory
/// is written, and so does a wait for work longer than [`STATE_IDLE`].
pub(super) fn run_writer(
    mut writer: Writer,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    committed: std::sync::mpsc::SyncSender<()>,
    synced: std::sync::mpsc::Sender<Committed>,
    unsynced: Arc<Unsynced>,
) {
    // A clock for the idle wait; the thread runs nothing else on it.
    let clock = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(clock) => clock,
        Err(error) => {
            tracing::error!(error = %Chain(&error), "the store's writer could not start");
            return;
        }
    };
    let mut next = jobs.blocking_recv();
    while let Some(job) = next.take() {
        match job {
            Job::Run(work) => {
                writer.write_state_logged();
                work(&mut writer.connection);
            }
            Job::Record(first) => {
                let mut events = first.events.len();
                let mut group = vec![first];
                gather(&mut jobs, &mut group, &mut events, &mut next);
                if events < SMALL_GROUP_EVENTS && next.is_none() {
                    unsynced.wait(SMALL_GROUP_WAIT);
                    gather(&mut jobs, &mut group, &mut events, &mut next);
                }
                let written = writer.write_group(&group);
                // A checkpoint is due; one already due is enough.
                let _ = committed.try_send(());
                unsynced.add();
                if let Err(std::sync::mpsc::SendError(lost)) =
                    synced.send(Committed { group, written })
                {
                    unsynced.answered(1);
                    answer(
                        lost.group,
                        &Err(unavailable("the store's syncer has stopped")),
                    );
                }
            }
        }
        if next.is_none() {
            let job = clock.block_on(async { tokio::time::timeout(STATE_IDLE, jobs.recv()).await });
            next = match job {
                Ok(job) => job,
                Err(_idle) => {
                    writer.write_state_logged();
                    jobs.blocking_recv()
                }
            };
        }
    }
    writer.write_state_logged();
}

/// Takes the deliveries waiting into the group, up to [`MAX_GROUP_EVENTS`]; any
/// other job ends the group and becomes `next`.
fn gather(
    jobs: &mut mpsc::UnboundedReceiver<Job>,
    group: &mut Vec<Delivery>,
    events: &mut usize,
    next: &mut Option<Job>,
) {
    while *events < MAX_GROUP_EVENTS && next.is_none() {
        match jobs.try_recv() {
            Ok(Job::Record(delivery)) => {
                *events += delivery.events.len();
                group.push(delivery);
            }
            Ok(other) => *next = Some(other),
            Err(_) => break,
        }
    }
}

/// The syncer thread: makes committed groups durable with `sync` (an fsync of
/// the WAL), then answers their deliveries. One fsync covers every group that
/// committed before it started, so the groups that commit while one runs share the
/// next. A failed fsync answers the groups it was for with an error: Meta sends
/// them again, and what did reach the disk is then found and not counted twice.
pub(super) fn run_syncer(
    mut sync: impl FnMut() -> std::io::Result<()>,
    committed: std::sync::mpsc::Receiver<Committed>,
    unsynced: &Unsynced,
) {
    while let Ok(first) = committed.recv() {
        let mut batch = vec![first];
        batch.extend(committed.try_iter());
        let synced = match batch.iter().any(|c| c.written.is_ok()) {
            true => sync(),
            false => Ok(()),
        };
        if let Err(error) = &synced {
            tracing::error!(error = %Chain(error), "fsync of the WAL failed; its deliveries are answered with an error");
        }
        let groups = batch.len();
        for Committed { group, written } in batch {
            let written = match (&synced, written) {
                (Err(error), Ok(_)) => Err(unavailable(format!(
                    "the write could not be made durable: {error}"
                ))),
                (_, written) => written,
            };
            answer(group, &written);
        }
        unsynced.answered(groups);
    }
}

/// Answers each delivery of a group with its outcomes, or the group's error.
fn answer(group: Vec<Delivery>, written: &Result<Vec<Vec<Outcome>>, StoreError>) {
    for (index, delivery) in group.into_iter().enumerate() {
        let result = match written {
            Ok(outcomes) => Ok(outcomes[index].clone()),
            Err(error) => Err(error.clone()),
        };
        // A caller gone (its request cancelled) leaves no one to tell.
        let _ = delivery.done.send(result);
    }
}

/// The checkpointer thread: after commits, at most every [`CHECKPOINT_INTERVAL`],
/// copies what the WAL holds into the database file (PASSIVE: it never blocks the
/// writer or readers), until the writer is gone.
pub(super) fn run_checkpointer(connection: Connection, commits: std::sync::mpsc::Receiver<()>) {
    while commits.recv().is_ok() {
        if let Err(error) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %Chain(&error), "checkpoint failed; the writer's own will catch up");
        }
        std::thread::sleep(CHECKPOINT_INTERVAL);
    }
}
