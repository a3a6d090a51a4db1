//! End-to-end tests against a real Anvil node started by each test on
//! 127.0.0.1 (a free port) and stopped when the test ends.

mod settlement;
mod submit;
