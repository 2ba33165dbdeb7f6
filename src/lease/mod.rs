//! Shard leases for fleets: several esmd instances sharing one mapping's Kinesis or DynamoDB
//! Streams shards through a DynamoDB table in the Kinesis Client Library's (2.x) lease schema,
//! so operators read it with the tools they know.
//!
//! - [`row`]: one row of the table and its KCL attribute names (pure).
//! - [`table`]: the conditional writes that take, renew, checkpoint and hand back a lease
//!   (`leaseCounter` is the fencing token: every write is conditional on it).
//! - [`balance`]: which leases an instance takes in a renewal round (pure): expired ones
//!   first, then at most one from the most loaded instance, a child only after its parents
//!   reached `SHARD_END`.
//!
//! Status: the table and the balancing rule are built and tested (moto, and unit tests); the
//! coordinator that runs renewal rounds and hands the held shards to the supervisor, and the
//! `[checkpoint] type = "dynamodb"` / `[fleet]` config keys, are the next step.

pub mod balance;
pub mod fleet;
pub mod row;
pub mod table;

pub use balance::{plan, LeaseView, Plan};
pub use fleet::{Fleet, LeaseStore, LeasedSource};
pub use row::{Lease, SHARD_END, TRIM_HORIZON};
pub use table::{LeaseError, LeaseTable};
