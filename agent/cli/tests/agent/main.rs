//! The agent end to end on a real Anvil node: `ballast run`, `ballast demo`
//! and `ballast approvals` as a user runs them, crash points, random kills.

mod crash;
mod flows;
mod scenario;
