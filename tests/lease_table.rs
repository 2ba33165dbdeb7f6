//! The fleet's lease table against a real DynamoDB API (moto): the KCL 2.x row shape, and the
//! conditional writes that fence a lease: a stale taker, renewer or checkpointer is refused and
//! writes nothing.

mod support;

use esmd::lease::{Lease, LeaseTable, SHARD_END, TRIM_HORIZON};
use esmd_api::ShardId;
use esmd_aws::AwsClientConfig;
use support::moto::MotoServer;

async fn table(moto: &MotoServer, name: &str) -> LeaseTable {
    let client = AwsClientConfig::new(None, Some(moto.endpoint())).with_sdk(Some(moto.sdk_config()));
    let table = LeaseTable::connect(name, &client).await;
    table.create_if_missing().await.expect("create table");
    // A second create is a no-op (several instances start at once).
    table.create_if_missing().await.expect("create again");
    table
}

fn shard(i: u32) -> ShardId {
    ShardId::new(format!("shardId-{i:012}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_taken_renewed_checkpointed_and_fenced() {
    let moto = MotoServer::start().await;
    let t = table(&moto, "esmd-leases").await;

    // Two mappings share the table; each lists only its own leases.
    assert!(t.create(&Lease::new("orders", shard(0), vec![])).await.unwrap());
    assert!(t.create(&Lease::new("orders", shard(1), vec![shard(0)])).await.unwrap());
    assert!(t.create(&Lease::new("audit", shard(0), vec![])).await.unwrap());
    assert!(!t.create(&Lease::new("orders", shard(0), vec![])).await.unwrap(), "a lease is created once");
    let mut orders = t.list("orders").await.unwrap();
    orders.sort_by(|a, b| a.shard.as_str().cmp(b.shard.as_str()));
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[1].parents, [shard(0)]);
    assert_eq!((orders[0].owner.as_deref(), orders[0].counter, orders[0].checkpoint.as_str()), (None, 0, TRIM_HORIZON));
    assert_eq!(t.list("audit").await.unwrap().len(), 1);
    assert_eq!(t.get("orders", shard(1).as_str()).await.unwrap().as_ref(), Some(&orders[1]));
    assert!(t.get("orders", shard(9).as_str()).await.unwrap().is_none());

    // a takes shard 0; b, working from the same (now stale) read, is refused.
    let fresh = orders[0].clone();
    let a = t.take(&fresh, "a").await.unwrap().expect("a takes it");
    assert_eq!((a.owner.as_deref(), a.counter, a.owner_switches_since_checkpoint), (Some("a"), 1, 1));
    assert!(t.take(&fresh, "b").await.unwrap().is_none(), "a stale take is refused");

    // a renews and checkpoints with its counter.
    let counter = t.renew("orders", shard(0).as_str(), "a", a.counter).await.unwrap().expect("renewed");
    assert_eq!(counter, 2);
    assert!(t.renew("orders", shard(0).as_str(), "a", 1).await.unwrap().is_none(), "a renewal with an old counter is refused");
    let state = serde_json::json!({"sum": 5});
    assert!(t.checkpoint("orders", shard(0).as_str(), "a", counter, "100", Some(&state)).await.unwrap());
    let now = t.list("orders").await.unwrap().into_iter().find(|l| l.shard == shard(0)).unwrap();
    assert_eq!((now.checkpoint.as_str(), now.window_state.as_ref(), now.owner_switches_since_checkpoint), ("100", Some(&state), 0));

    // b steals it (a stopped renewing); from then on a's writes are refused and change nothing.
    let b = t.take(&now, "b").await.unwrap().expect("b steals it");
    assert_eq!((b.owner.as_deref(), b.counter, b.owner_switches_since_checkpoint), (Some("b"), 3, 1));
    assert!(!t.checkpoint("orders", shard(0).as_str(), "a", counter, "200", None).await.unwrap(), "the old owner's checkpoint is fenced off");
    assert!(t.renew("orders", shard(0).as_str(), "a", counter).await.unwrap().is_none());
    assert!(!t.release("orders", shard(0).as_str(), "a", counter).await.unwrap());
    let after = t.list("orders").await.unwrap().into_iter().find(|l| l.shard == shard(0)).unwrap();
    assert_eq!((after.checkpoint.as_str(), after.owner.as_deref(), after.window_state.as_ref()), ("100", Some("b"), Some(&state)));

    // b finishes the shard and hands the lease back: unowned, counter bumped, SHARD_END kept.
    assert!(t.checkpoint("orders", shard(0).as_str(), "b", b.counter, SHARD_END, None).await.unwrap());
    assert!(t.release("orders", shard(0).as_str(), "b", b.counter).await.unwrap());
    let done = t.list("orders").await.unwrap().into_iter().find(|l| l.shard == shard(0)).unwrap();
    assert_eq!((done.is_finished(), done.owner, done.counter, done.window_state), (true, None, 4, None));
}
