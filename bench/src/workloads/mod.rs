//! One module per workload of `make bench`, each adding its rows and notes to the [`Bench`]
//! (crate::harness::Bench) it is given.

pub mod cold_start;
pub mod floor;
pub mod issuance;
pub mod on_demand;
pub mod restart;
pub mod storage;
