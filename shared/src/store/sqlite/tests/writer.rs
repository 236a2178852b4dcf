//! The syncer: no delivery is answered before the fsync that makes it durable.

use tokio::sync::oneshot;

use crate::ingest::Outcome;
use crate::store::sqlite::unavailable;
use crate::store::sqlite::writer::{run_syncer, Committed, Delivery, Unsynced};
use crate::store::StoreError;

type Answer = oneshot::Receiver<Result<Vec<Outcome>, StoreError>>;

/// A group of `n` (empty) deliveries and the receivers of their answers.
fn waiting(n: usize) -> (Vec<Delivery>, Vec<Answer>) {
    (0..n)
        .map(|_| {
            let (done, answer) = oneshot::channel();
            let delivery = Delivery {
                events: Vec::new(),
                retention_days: 90,
                done,
            };
            (delivery, answer)
        })
        .unzip()
}

#[test]
fn groups_are_answered_after_one_fsync_covers_them() {
    let (first, mut first_answers) = waiting(2);
    let (failed, mut failed_answers) = waiting(1);
    let (to_sync, committed) = std::sync::mpsc::channel();
    let outcomes = vec![vec![Outcome::Stored], vec![Outcome::Duplicate]];
    to_sync
        .send(Committed {
            group: first,
            written: Ok(outcomes),
        })
        .unwrap();
    to_sync
        .send(Committed {
            group: failed,
            written: Err(unavailable("rolled back")),
        })
        .unwrap();
    drop(to_sync);
    let unsynced = Unsynced::default();
    unsynced.add();
    unsynced.add();
    let mut syncs = 0;
    run_syncer(
        || {
            syncs += 1;
            let answered = first_answers.iter_mut().any(|a| a.try_recv().is_ok());
            assert!(!answered, "answered before the fsync");
            Ok(())
        },
        committed,
        &unsynced,
    );
    assert_eq!(syncs, 1, "both groups waited for one fsync");
    assert_eq!(*unsynced.groups.lock().unwrap(), 0);
    assert_eq!(
        first_answers[0].try_recv().unwrap().unwrap(),
        [Outcome::Stored]
    );
    assert_eq!(
        first_answers[1].try_recv().unwrap().unwrap(),
        [Outcome::Duplicate]
    );
    assert!(failed_answers[0].try_recv().unwrap().is_err());
}

#[test]
fn a_failed_fsync_answers_its_groups_with_an_error() {
    let (group, mut answers) = waiting(1);
    let (to_sync, committed) = std::sync::mpsc::channel();
    let written = Ok(vec![vec![Outcome::Stored]]);
    to_sync.send(Committed { group, written }).unwrap();
    drop(to_sync);
    let unsynced = Unsynced::default();
    unsynced.add();
    run_syncer(
        || Err(std::io::Error::other("disk gone")),
        committed,
        &unsynced,
    );
    assert!(matches!(
        answers[0].try_recv().unwrap(),
        Err(StoreError::Unavailable(_))
    ));
}
